#!/usr/bin/env bash
# End-to-end run of the desktop app: starts a demo server, runs the desktop build under Xvfb,
# activates with a demo PIN, does a visit with an order (the demo's outlets owe money: the order
# form warns of the overdue debt), a distribution check, the questionnaires and a registered
# claim, edits the outlet's shared card, syncs, reads the order's number back, and saves a
# screenshot of each screen into OUT_DIR. Exits 0 only if the server then holds that visit, that
# order, that claim and that card change. A failed step prints what the screen
# showed and leaves a `failed-line-N` screenshot in OUT_DIR.
#
#   mobile/app/e2e.sh OUT_DIR
#
# Needs: Xvfb (xvfb), import (imagemagick), the webview libraries (libwebkit2gtk-4.1-0).
set -euo pipefail
out=$(realpath -m "${1:?usage: e2e.sh OUT_DIR}")
cd "$(dirname "$0")/../.."
source mobile/app/lib.sh
mkdir -p "$out"

cargo build -q -p fieldsync-server -p fieldsync-app --features fieldsync-app/desktop
server_bin=target/debug/fieldsync-server
app_bin=target/debug/fieldsync-app

serve "$server_bin" "sqlite://$work/server.db" --demo
# The first demo agent's login and PIN, as the server printed them.
read -r login pin < <(awk '/login +PIN/ { getline; print $1, $2; exit }' "$work/server.log")
[ -n "${pin:-}" ] || { cat "$work/server.log"; echo "no demo PIN printed" >&2; exit 1; }
echo "e2e: server $url, agent $login"

start_xvfb

{ activation_steps; cat <<SCRIPT; } >"$work/script"
shot 01-activation
click #activate
wait #route
ready
# The first sync (started right after activation) has brought the route.
expect #banner-last = Last sync: 2
shot 02-today
# The agent's own month: the demo's plans reached the phone.
scroll #my-month
expect #my-month = %
shot 02b-my-month
click #route-stop-0
wait #start-visit
shot 03-outlet
# What the outlet owes (the demo's first invoice of each outlet is overdue) and its plan.
scroll #outlet-debt
expect #debt-overdue = UAH
shot 03a-outlet-debt-plan
# The outlet's shared card, edited offline: hours, a note, a contact person.
click #card-edit
wait #card-form
fill #card-open-mon = 08:00-13:00,14:00-18:00
fill #card-delivery-mon = 07:00-10:00
fill #card-notes-input = Ask for Olena, not the cashier. Deliveries through the yard.
fill #card-contact-name = Olena Shevchuk
fill #card-contact-role = buyer
fill #card-contact-phone = +380671234567
click #card-save
expect #card-saved = Saved
expect #card-pending = 1
scroll #outlet-card
shot 03b-outlet-card
scroll #start-visit
click #start-visit
wait #visit-fix
shot 04-visit
click #tab-order
wait #catalogue li
# The demo's stock report reached the phone: the catalogue shows what is on hand.
wait #catalogue li:nth-child(1) [id^=stock-]
fill #catalogue li:nth-child(1) input.qty = 3
fill #catalogue li:nth-child(2) input.qty = 2.5
expect #order-lines li:nth-child(2) = ×
expect #order-overdue = overdue debt
fill #overdue-reason = The owner pays on Friday
shot 05-order
click #place-order
wait #visit-activity li
click #tab-distribution
wait #must-stock
click #all-present
shot 06-distribution
click #save-distribution
wait #visit-activity li:nth-child(2)
click #tab-questionnaire
wait #questionnaires
# Shelf audit: no display (its follow-up questions stay hidden), a number, a choice, a date.
click #questionnaires li:nth-child(2)
wait #questionnaire-form
click #questionnaire-form input[id\$='-no']
fill #questionnaire-form input[inputmode=decimal] = 40
click #questionnaire-form input[type=checkbox]
fill #questionnaire-form input[type=date] = 2026-12-01
shot 07-questionnaire
click #save-answers
wait #questionnaires
# Owner contact.
click #questionnaires li:nth-child(1)
wait #questionnaire-form
click #questionnaire-form input[id\$='-yes']
fill #questionnaire-form textarea = Met the owner
click #save-answers
wait #questionnaires
# A claim on the order just placed: one unit of its first line, registered.
click #tab-claim
wait #claim-lines li
fill #claim-qty-0 = 1
fill #claim-comment = Two bottles arrived broken
shot 07b-claim
click #register-claim
wait #outlet-claims li
expect #outlet-claims = Registered
scroll #outlet-claims
shot 07c-outlet-claims
click #resume-visit
wait #visit-fix
click #tab-summary
wait #end-visit
shot 08-visit-summary
click #end-visit
wait #route
click #nav-sync
click #sync-now
expect #sync-result = Synced
expect #banner-waiting = 0 waiting
shot 09-sync
# The order's number, which the server gave it, came back with the sync.
click #nav-today
wait #route
click #route-stop-0
wait #outlet-orders
expect #outlet-orders .order-number = No.
scroll #outlet-orders
shot 09b-order-number
click #nav-settings
wait #device-id
shot 10-settings
SCRIPT

"$app_bin" --data-dir "$work/app" --server "$url" --auto-sync 5 \
  --position 50.4501,30.5234,12 --e2e-script "$work/script" \
  --shot-cmd "import -display $display -window root $out/{}.png" 2>"$work/app.log" | tee "$work/app.out" &
app=$!
pids+=($app)
status=0
wait "$app" || status=$?
if [ "$status" != 0 ]; then
  echo "e2e: the app failed ($status)" >&2
  tail -n 40 "$work/app.log" >&2
  exit 1
fi

# Evaluations whose answer the webview lost (the steps retry them), for the log.
grep -h "without an answer" "$work/app.log" >&2 || true

# The server must hold the visit (ended) and the order this app made (the demo's past week,
# made by the demo's own phones, is left out).
python3 - "$work/server.db" "$login" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
login = sys.argv[2]
visits = db.execute(
    "SELECT v.id, v.ended_received_ms FROM visits v JOIN mobile_users m ON m.id = v.mobile_user_id "
    "JOIN devices d ON d.id = v.device_id WHERE m.login = ? AND d.device_uid NOT LIKE 'demo-%'",
    (login,)).fetchall()
orders = db.execute(
    "SELECT o.id, o.total_minor, o.visit_id FROM orders o JOIN mobile_users m ON m.id = o.mobile_user_id "
    "JOIN devices d ON d.id = o.device_id WHERE m.login = ? AND d.device_uid NOT LIKE 'demo-%'",
    (login,)).fetchall()
answers = db.execute("SELECT COUNT(*) FROM questionnaire_answers").fetchone()[0]
checks = db.execute("SELECT COUNT(*) FROM distribution_checks").fetchone()[0]
print(f"e2e: server holds {len(visits)} visit(s), {len(orders)} order(s), {answers} answers, {checks} distribution rows")
assert len(visits) == 1 and visits[0][1] is not None, visits
assert len(orders) == 1 and orders[0][1] > 0 and orders[0][2] == visits[0][0], orders
assert answers >= 3 and checks >= 1
# The card edit made offline on the outlet screen arrived, once, by this phone's actor.
cards = db.execute(
    "SELECT l.actor FROM card_log l JOIN card_actors a ON a.actor = l.actor "
    "JOIN devices d ON d.id = a.device_id JOIN mobile_users m ON m.id = d.mobile_user_id "
    "WHERE m.login = ?", (login,)).fetchall()
print(f"e2e: server holds {len(cards)} card change(s) from this phone")
assert len(cards) == 1, cards
# The claim registered in the visit arrived once, with its line.
claims = db.execute(
    "SELECT c.stage, (SELECT COUNT(*) FROM claim_lines l WHERE l.claim_id = c.id) FROM claims c "
    "JOIN devices d ON d.id = c.device_id JOIN mobile_users m ON m.id = c.mobile_user_id "
    "WHERE m.login = ? AND d.device_uid NOT LIKE 'demo-%'", (login,)).fetchall()
print(f"e2e: server holds claims {claims}")
assert claims == [("registered", 1)], claims
reason = db.execute(
    "SELECT o.overdue_reason FROM orders o JOIN devices d ON d.id = o.device_id "
    "WHERE d.device_uid NOT LIKE 'demo-%'").fetchall()
assert reason == [("The owner pays on Friday",)], reason
PY
ls "$out"
echo "e2e: passed"
