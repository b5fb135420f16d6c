//! The OpenAPI 3.0 document of the distributors' API, served at `/api/v1/openapi.json`.
use axum::Json;
use serde_json::{Value, json};

/// The JSON content of a request or an answer: one of the document's schemas.
fn json_content(schema: &str) -> Value {
    json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}})
}

/// An answer whose body is one of the document's schemas.
fn json_response(description: &str, schema: &str) -> Value {
    json!({"description": description, "content": json_content(schema)})
}

/// A required JSON request body of one of the document's schemas.
fn json_request(schema: &str) -> Value {
    json!({"required": true, "content": json_content(schema)})
}

fn error_response(description: &str) -> Value {
    json_response(description, "Error")
}

fn claim_id_param() -> Value {
    json!({"name": "id", "in": "path", "required": true, "description": "The claim's id (UUID).",
           "schema": {"type": "string", "format": "uuid"}})
}

fn order_id_param() -> Value {
    json!({"name": "id", "in": "path", "required": true, "description": "The order's id (UUID).",
           "schema": {"type": "string", "format": "uuid"}})
}

/// The document.
pub fn spec() -> Value {
    let unauthorized = error_response("No, an unknown or a revoked API key.");
    let not_found = error_response("No such order for this distributor.");
    let bad = error_response("Malformed or invalid request.");
    let states = fieldsync_protocol::orders::NAMES;
    let reportable = &states[1..];
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "fieldsync distributor API",
            "version": "1",
            "description": "Orders and claims synced by sales agents, handed over exactly once: read the feed, store them, acknowledge them; then report each order's status and each claim's stage. Authenticate with an API key created by a key user (`fieldsync-server api-key add --distributor CODE`)."
        },
        "servers": [{"url": "/"}],
        "security": [{"apiKey": []}],
        "paths": {
            "/api/v1/orders/feed": {"get": {
                "operationId": "orderFeed",
                "summary": "Placed orders not yet acknowledged, oldest first.",
                "parameters": [
                    {"name": "after", "in": "query", "required": false, "description": "The next_cursor of the previous page (0 or absent: from the start).", "schema": {"type": "integer", "format": "int64", "minimum": 0, "default": 0}},
                    {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}}
                ],
                "responses": {
                    "200": json_response("A page of the feed.", "FeedPage"),
                    "400": bad, "401": unauthorized
                }
            }},
            "/api/v1/orders/ack": {"post": {
                "operationId": "acknowledgeOrders",
                "summary": "Acknowledge received orders; they leave the feed for good. Idempotent.",
                "requestBody": json_request("AckRequest"),
                "responses": {
                    "200": json_response("What happened to each id.", "AckResponse"),
                    "400": bad, "401": unauthorized
                }
            }},
            "/api/v1/orders/{id}": {"get": {
                "operationId": "getOrder",
                "summary": "One order with its lines and current state.",
                "parameters": [order_id_param()],
                "responses": {
                    "200": json_response("The order.", "Order"),
                    "401": unauthorized, "404": not_found
                }
            }},
            "/api/v1/orders/{id}/status": {"post": {
                "operationId": "setOrderStatus",
                "summary": "Move an order to a new state.",
                "description": "Forward moves may skip steps (placed → accepted → confirmed → invoiced → shipped → delivered → completed). Rejected and cancelled need a reason and are possible until the order is invoiced. Nothing leaves completed, rejected or cancelled.",
                "parameters": [order_id_param()],
                "requestBody": json_request("StatusUpdate"),
                "responses": {
                    "200": json_response("The order as it now is.", "Order"),
                    "400": bad, "401": unauthorized, "404": not_found,
                    "409": error_response("The move is not allowed from the order's current state (given as current_state).")
                }
            }},
            "/api/v1/imports/{kind}": {"post": {
                "operationId": "importRows",
                "summary": "Import local outlets, local products, warehouses, prices, stock, actual sales, receivables, purchase plans, routes, org units, price lists or sync points.",
                "description": "The body is a CSV file (UTF-8, comma or semicolon, header line), an XLSX workbook (first sheet, header row) or JSON {\"rows\": [{...}]}; the format comes from ?format= or the content type. Columns (required first): outlets code, name, address, contact, phone, channel, latitude, longitude, territory_code, price_list (a price list's name), rdc_code (a distribution centre's outlet code; empty detaches), rdc_share (percent; empty: 100); products code, name, unit, category, brand, must_stock, must_stock_channels (outlet channels separated by ;, empty: every channel); warehouses code, name; prices price_list (its name), product_code, price (e.g. 12.50), valid_from (YYYY-MM-DD, the first day it applies; empty: since always); stock warehouse_code, product_code, quantity; sales invoice_number, invoice_date, outlet_code, product_code, quantity, amount; receivables invoice_number, outlet_code, invoice_date, due_date, amount, paid (empty: 0), currency (empty: the distributor's) — one open invoice a row, an invoice paid in full leaves the outlet's debt, invoices not in the file stay as they are; plans period (YYYY-MM), target, outlet_code or position_code (one of them), category or brand (neither: every product), measure (money, the default, or quantity); routes date, position_code, stop, outlet_code; org_units code, name, kind (region, team, territory or position; needed for a new code), parent_code (an empty cell: at the top); price_lists name, payment_form (cash, credit, bank_transfer), default (yes/no); sync_points login, distributor_code, granted (yes/no; head office only: refused for a distributor's API key). Outlets, products, warehouses, prices, receivables, plans, org units, price lists and sync points apply their valid rows and log the others; stock, sales and routes apply all rows or none. Org units follow the org editor's rules (kinds, no cycles; a moved position's phone follows it). A column absent from the file never changes what is stored; an empty cell in a present optional column clears it; a row with an empty required cell is refused with its line number. New outlets get the distributor's default price list (or its first) unless the file names one. With dry_run=1 (every kind) the import runs and is rolled back: the job reports what would be created, changed (with before and after of the first changes) and left unchanged, and the refused rows; nothing is written (status checked).",
                "parameters": [
                    {"name": "kind", "in": "path", "required": true, "schema": {"type": "string", "enum": ["outlets", "products", "warehouses", "prices", "stock", "sales", "receivables", "plans", "routes", "org_units", "price_lists", "sync_points"]}},
                    {"name": "format", "in": "query", "required": false, "schema": {"type": "string", "enum": ["csv", "xlsx", "json"]}},
                    {"name": "file_name", "in": "query", "required": false, "schema": {"type": "string"}},
                    {"name": "dry_run", "in": "query", "required": false, "description": "1: report what would change, write nothing.", "schema": {"type": "string", "enum": ["0", "1", "true", "false"]}},
                    {"name": "wait", "in": "query", "required": false, "description": "Seconds to wait for the job to end (default 60, at most 100, 0 answers at once); a job still running then is answered 202.", "schema": {"type": "integer", "minimum": 0}}
                ],
                "requestBody": {"required": true, "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {"schema": {"type": "string", "format": "binary"}},
                    "application/json": {"schema": {"type": "object"}}
                }},
                "responses": {
                    "200": json_response("The job: done, or partial with the refused rows.", "ImportJob"),
                    "202": json_response("The job is still running in the background (status running); follow it at the Location header's URL.", "ImportJob"),
                    "401": unauthorized,
                    "413": {"description": "The body is larger than 64 MB."},
                    "422": json_response("The job failed and nothing was applied (unreadable file, missing columns, or a refused row of an all-or-nothing kind).", "ImportJob")
                }
            }},
            "/api/v1/import-jobs/{id}": {"get": {
                "operationId": "getImportJob",
                "summary": "An import job with its log.",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "format": "int64"}}],
                "responses": {
                    "200": json_response("The job.", "ImportJob"),
                    "401": unauthorized,
                    "404": error_response("No such import job for this distributor.")
                }
            }},
            "/api/v1/claims/feed": {"get": {
                "operationId": "claimFeed",
                "summary": "Registered claims not yet acknowledged, in the order they were registered (drafts stay on the agent's side).",
                "parameters": [
                    {"name": "after", "in": "query", "required": false, "description": "The next_cursor of the previous page.", "schema": {"type": "integer", "format": "int64", "minimum": 0, "default": 0}},
                    {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}}
                ],
                "responses": {
                    "200": json_response("A page of the claims feed.", "ClaimFeedPage"),
                    "400": bad, "401": unauthorized
                }
            }},
            "/api/v1/claims/ack": {"post": {
                "operationId": "acknowledgeClaims",
                "summary": "Acknowledge received claims; they leave the feed for good. Idempotent.",
                "requestBody": json_request("ClaimAckRequest"),
                "responses": {
                    "200": json_response("What happened to each id.", "ClaimAckResponse"),
                    "400": bad, "401": unauthorized
                }
            }},
            "/api/v1/claims/{id}": {"get": {
                "operationId": "getClaim",
                "summary": "One claim with its lines, stage and history.",
                "parameters": [claim_id_param()],
                "responses": {
                    "200": json_response("The claim.", "Claim"),
                    "401": unauthorized, "404": error_response("No such claim for this distributor.")
                }
            }},
            "/api/v1/claims/{id}/stage": {"post": {
                "operationId": "setClaimStage",
                "summary": "Move a claim to a new stage.",
                "description": "registered → being_considered → accepted or declined (deciding straight from registered is allowed). A declined claim needs an answer. A decision is final. The agent's phone shows the new stage after its next sync.",
                "parameters": [claim_id_param()],
                "requestBody": json_request("StageUpdate"),
                "responses": {
                    "200": json_response("The claim as it now is.", "Claim"),
                    "400": bad, "401": unauthorized, "404": error_response("No such claim for this distributor."),
                    "409": error_response("The move is not allowed from the claim's current stage (given as current_state).")
                }
            }},
            "/api/v1/orders/{id}/history": {"get": {
                "operationId": "orderHistory",
                "summary": "Every state the order went through.",
                "parameters": [order_id_param()],
                "responses": {
                    "200": json_response("The history, oldest first.", "History"),
                    "401": unauthorized, "404": not_found
                }
            }}
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "An API key: fsk_..."}},
            "schemas": {
                "Error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string", "enum": ["unauthorized", "malformed", "invalid", "not_found", "unknown_state", "illegal_transition", "unavailable"]},
                    "message": {"type": "string"},
                    "current_state": {"type": "string"}
                }},
                "OrderLine": {"type": "object", "required": ["line_no", "product_id", "product_code", "product_name", "quantity_milli", "price_minor", "sum_minor", "comment"], "properties": {
                    "line_no": {"type": "integer", "format": "int64"},
                    "product_id": {"type": "integer", "format": "int64"},
                    "product_code": {"type": "string"},
                    "product_name": {"type": "string"},
                    "quantity_milli": {"type": "integer", "format": "int64", "description": "Thousandths of the product's unit."},
                    "price_minor": {"type": "integer", "format": "int64", "description": "Minor currency units."},
                    "sum_minor": {"type": "integer", "format": "int64"},
                    "comment": {"type": "string"},
                    "confirmed_quantity_milli": {"type": "integer", "format": "int64", "nullable": true},
                    "shipped_quantity_milli": {"type": "integer", "format": "int64", "nullable": true}
                }},
                "Order": {"type": "object", "required": ["id", "number", "state", "outlet_id", "outlet_code", "outlet_name", "outlet_address", "agent_login", "price_list_id", "warehouse_code", "placed_at_ms", "received_at_ms", "total_minor", "comment", "delivery_date", "lines"], "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "number": {"type": "integer", "format": "int64", "description": "The server's order number, increasing."},
                    "state": {"type": "string", "enum": states},
                    "outlet_id": {"type": "integer", "format": "int64"},
                    "outlet_code": {"type": "string"},
                    "outlet_name": {"type": "string"},
                    "outlet_address": {"type": "string"},
                    "agent_login": {"type": "string"},
                    "price_list_id": {"type": "integer", "format": "int64"},
                    "warehouse_code": {"type": "string"},
                    "visit_id": {"type": "string", "nullable": true},
                    "placed_at_ms": {"type": "integer", "format": "int64", "description": "Device time of placing, ms since the Unix epoch."},
                    "received_at_ms": {"type": "integer", "format": "int64"},
                    "total_minor": {"type": "integer", "format": "int64"},
                    "comment": {"type": "string"},
                    "delivery_date": {"type": "string", "description": "YYYY-MM-DD or empty."},
                    "overdue_reason": {"type": "string", "description": "Why the agent ordered although the outlet had overdue debt (when the distributor's overdue policy asks for a reason); empty otherwise."},
                    "lines": {"type": "array", "items": {"$ref": "#/components/schemas/OrderLine"}}
                }},
                "FeedPage": {"type": "object", "required": ["orders", "next_cursor", "has_more"], "properties": {
                    "orders": {"type": "array", "items": {"$ref": "#/components/schemas/Order"}},
                    "next_cursor": {"type": "integer", "format": "int64"},
                    "has_more": {"type": "boolean"}
                }},
                "AckRequest": {"type": "object", "required": ["order_ids"], "properties": {
                    "order_ids": {"type": "array", "maxItems": 1000, "items": {"type": "string"}}
                }},
                "AckResponse": {"type": "object", "required": ["results"], "properties": {
                    "results": {"type": "array", "items": {"type": "object", "required": ["order_id", "result"], "properties": {
                        "order_id": {"type": "string"},
                        "result": {"type": "string", "enum": ["acknowledged", "already_acknowledged", "unknown"]}
                    }}}
                }},
                "LineQuantity": {"type": "object", "required": ["line_no", "quantity_milli"], "properties": {
                    "line_no": {"type": "integer", "format": "int64"},
                    "quantity_milli": {"type": "integer", "format": "int64", "minimum": 0}
                }},
                "StatusUpdate": {"type": "object", "required": ["state"], "properties": {
                    "state": {"type": "string", "enum": reportable},
                    "reason": {"type": "string", "maxLength": 1000, "description": "Required for rejected and cancelled."},
                    "lines": {"type": "array", "items": {"$ref": "#/components/schemas/LineQuantity"}, "description": "Confirmed quantities (confirmed) or shipped quantities (invoiced, shipped, delivered)."},
                    "delivery_date": {"type": "string", "description": "YYYY-MM-DD"},
                    "document_number": {"type": "string", "maxLength": 100},
                    "document_date": {"type": "string", "description": "YYYY-MM-DD"},
                    "total_minor": {"type": "integer", "format": "int64", "nullable": true, "description": "The invoiced total."}
                }},
                "ImportJob": {"type": "object", "required": ["id", "kind", "status", "rows_read", "rows_applied", "rows_refused", "errors"], "properties": {
                    "id": {"type": "integer", "format": "int64"},
                    "distributor_id": {"type": "integer", "format": "int64"},
                    "kind": {"type": "string"},
                    "source": {"type": "string"},
                    "file_name": {"type": "string"},
                    "format": {"type": "string"},
                    "status": {"type": "string", "enum": ["running", "done", "partial", "failed", "checked"]},
                    "message": {"type": "string"},
                    "rows_read": {"type": "integer"},
                    "rows_applied": {"type": "integer"},
                    "rows_refused": {"type": "integer"},
                    "started_at_ms": {"type": "integer", "format": "int64"},
                    "finished_at_ms": {"type": "integer", "format": "int64", "nullable": true},
                    "errors": {"type": "array", "description": "[line number, reason] of each refused row (at most 1000).", "items": {"type": "array", "items": {}}}
                }},
                "ClaimLine": {"type": "object", "required": ["line_no", "order_id", "order_number", "order_line_no", "product_id", "product_code", "product_name", "quantity_milli", "claim_type", "claim_subtype"], "properties": {
                    "line_no": {"type": "integer", "format": "int64"},
                    "order_id": {"type": "string", "format": "uuid"},
                    "order_number": {"type": "integer", "format": "int64"},
                    "order_line_no": {"type": "integer", "format": "int64"},
                    "product_id": {"type": "integer", "format": "int64"},
                    "product_code": {"type": "string"},
                    "product_name": {"type": "string"},
                    "quantity_milli": {"type": "integer", "format": "int64"},
                    "claim_type": {"type": "string"},
                    "claim_subtype": {"type": "string"}
                }},
                "Claim": {"type": "object", "required": ["id", "number", "stage", "outlet_id", "outlet_code", "outlet_name", "agent_login", "comment", "answer", "saved_device_ms", "received_at_ms", "stage_changed_ms", "handed_over", "lines"], "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "number": {"type": "integer", "format": "int64"},
                    "stage": {"type": "string", "enum": ["registered", "being_considered", "accepted", "declined"]},
                    "outlet_id": {"type": "integer", "format": "int64"},
                    "outlet_code": {"type": "string"},
                    "outlet_name": {"type": "string"},
                    "agent_login": {"type": "string"},
                    "visit_id": {"type": "string", "nullable": true},
                    "comment": {"type": "string"},
                    "answer": {"type": "string"},
                    "saved_device_ms": {"type": "integer", "format": "int64"},
                    "received_at_ms": {"type": "integer", "format": "int64"},
                    "registered_at_ms": {"type": "integer", "format": "int64", "nullable": true},
                    "stage_changed_ms": {"type": "integer", "format": "int64"},
                    "handed_over": {"type": "boolean"},
                    "feed_seq": {"type": "integer", "format": "int64", "nullable": true, "description": "Its place in the feed, given when it was registered; the feed's next_cursor is the last one's."},
                    "lines": {"type": "array", "items": {"$ref": "#/components/schemas/ClaimLine"}},
                    "history": {"type": "array", "items": {"type": "object"}}
                }},
                "ClaimFeedPage": {"type": "object", "required": ["claims", "next_cursor", "has_more"], "properties": {
                    "claims": {"type": "array", "items": {"$ref": "#/components/schemas/Claim"}},
                    "next_cursor": {"type": "integer", "format": "int64"},
                    "has_more": {"type": "boolean"}
                }},
                "ClaimAckRequest": {"type": "object", "required": ["claim_ids"], "properties": {
                    "claim_ids": {"type": "array", "maxItems": 1000, "items": {"type": "string"}}
                }},
                "ClaimAckResponse": {"type": "object", "required": ["results"], "properties": {
                    "results": {"type": "array", "items": {"type": "object", "required": ["claim_id", "result"], "properties": {
                        "claim_id": {"type": "string"},
                        "result": {"type": "string", "enum": ["acknowledged", "already_acknowledged", "unknown"]}
                    }}}
                }},
                "StageUpdate": {"type": "object", "required": ["stage"], "properties": {
                    "stage": {"type": "string", "enum": ["being_considered", "accepted", "declined"]},
                    "answer": {"type": "string", "maxLength": 1000, "description": "Required for declined."}
                }},
                "History": {"type": "object", "required": ["history"], "properties": {
                    "history": {"type": "array", "items": {"type": "object", "required": ["state", "reason", "source", "changed_at_ms"], "properties": {
                        "state": {"type": "string"},
                        "reason": {"type": "string"},
                        "source": {"type": "string"},
                        "changed_at_ms": {"type": "integer", "format": "int64"}
                    }}}
                }}
            }
        }
    })
}

pub async fn document() -> Json<Value> {
    Json(spec())
}
