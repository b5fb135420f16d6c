//! The rules the phone and the server must compute identically, run through both: each case
//! of a rule table goes through the agent engine (as the agent in the shop would enter it)
//! and through the server's ingest (as a pushed mutation), and both must give the table's
//! verdict with the same reason.

use std::collections::HashMap;

use fieldsync_agent::{Engine, HttpTransport};
use fieldsync_protocol::questionnaire::{self, Problem};
use fieldsync_protocol::v1::{self, MutationOutcome, answer::Value};
use fieldsync_protocol::{ids, orders};
use fieldsync_server::store::world::{QuestionConditionInput, QuestionInput};
use fieldsync_tests::*;

/// The case questionnaire as the back office would create it.
fn inputs(q: &v1::Questionnaire) -> Vec<QuestionInput> {
    let index = |id: i64| q.questions.iter().position(|x| x.id == id).unwrap();
    q.questions
        .iter()
        .map(|x| QuestionInput {
            text: x.text.clone(),
            question_type: questionnaire::type_name(x.r#type()).into(),
            required: x.required,
            choices: x.choices.iter().map(|c| c.label.clone()).collect(),
            condition: x.condition.as_ref().map(|c| {
                let earlier = index(c.question_id);
                let cond = if c.equals_choice_id == 0 {
                    QuestionConditionInput::Yes(c.equals_yes)
                } else {
                    let choices = &q.questions[earlier].choices;
                    QuestionConditionInput::Choice(
                        choices
                            .iter()
                            .position(|ch| ch.id == c.equals_choice_id)
                            .unwrap(),
                    )
                };
                (earlier, cond)
            }),
        })
        .collect()
}

/// Maps the table's question and choice ids to the ids the server gave them.
struct Ids {
    questions: HashMap<i64, i64>,
    choices: HashMap<i64, i64>,
}

impl Ids {
    fn new(table: &v1::Questionnaire, stored: &v1::Questionnaire) -> Ids {
        let mut questions = HashMap::new();
        let mut choices = HashMap::new();
        for (a, b) in table.questions.iter().zip(&stored.questions) {
            questions.insert(a.id, b.id);
            for (ca, cb) in a.choices.iter().zip(&b.choices) {
                choices.insert(ca.id, cb.id);
            }
        }
        Ids { questions, choices }
    }

    fn q(&self, id: i64) -> i64 {
        // An id outside the table (a question of another questionnaire) stays foreign.
        self.questions.get(&id).copied().unwrap_or(id + 1_000_000)
    }

    fn c(&self, id: i64) -> i64 {
        self.choices.get(&id).copied().unwrap_or(id + 1_000_000)
    }

    fn answers(&self, answers: &[v1::Answer]) -> Vec<v1::Answer> {
        answers
            .iter()
            .map(|a| v1::Answer {
                question_id: self.q(a.question_id),
                value: a.value.clone().map(|v| match v {
                    Value::SingleChoice(c) => Value::SingleChoice(self.c(c)),
                    Value::MultipleChoice(mut m) => {
                        m.ids = m.ids.iter().map(|c| self.c(*c)).collect();
                        Value::MultipleChoice(m)
                    }
                    other => other,
                }),
            })
            .collect()
    }

    fn problem(&self, p: &Problem) -> Problem {
        match p {
            Problem::NoAnswers => Problem::NoAnswers,
            Problem::NotInQuestionnaire(q) => Problem::NotInQuestionnaire(self.q(*q)),
            Problem::EmptyAnswer(q) => Problem::EmptyAnswer(self.q(*q)),
            Problem::WrongType(q, t) => Problem::WrongType(self.q(*q), *t),
            Problem::AnsweredTwice(q) => Problem::AnsweredTwice(self.q(*q)),
            Problem::RequiredMissing(q) => Problem::RequiredMissing(self.q(*q)),
        }
    }
}

/// The real agent engine, activated for `agent` and synced once.
async fn synced_phone(
    server: &TestServer,
    agent: &fieldsync_server::seed::SeededAgent,
    dir: &tempfile::TempDir,
) -> (Engine, HttpTransport) {
    let e = Engine::open(dir.path().join("agent.db")).unwrap();
    let t = HttpTransport::new(&server.url);
    e.activate(&t, &server.url, &agent.login, &agent.pin, "phone", "1.0")
        .await
        .unwrap();
    e.sync(&t).await.unwrap();
    (e, t)
}

async fn questionnaire_table(db: &TestDb) {
    let (server, agents) = acme_server(db, 2).await;
    let dist = server.store.distributor_id("ACME").await.unwrap();
    let table = questionnaire::case_questionnaire(1);
    server
        .store
        .create_questionnaire(dist, "Rule table", &inputs(&table))
        .await
        .unwrap();

    // The phone: pulls the questionnaire and fills it in an open visit.
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = synced_phone(&server, &agents[0], &dir).await;
    let stored = e
        .questionnaires()
        .unwrap()
        .into_iter()
        .find(|q| q.name == "Rule table")
        .expect("the phone has the questionnaire");
    let ids = Ids::new(&table, &stored);
    let outlet = e.search_outlets("", 1).unwrap().remove(0);
    let visit = e
        .start_visit(outlet.id, None, vec![fix_at(504_501_000, 305_234_000, 60)])
        .unwrap();

    // The server: the same answers pushed raw by another agent's device.
    let (raw, _) = RawClient::activated(&server.url, &agents[1]).await;
    let session = uuid::Uuid::new_v4();
    let known = Known::from_changes(&raw.pull_all(session).await);
    let mut b = MutationBuilder::new();
    let raw_visit = ids::new_id();
    let mut batch = vec![b.start_visit(raw_visit, &known.outlets[0])];

    let cases = questionnaire::cases();
    assert!(cases.len() >= 15, "the table lost cases");
    let mut phone = Vec::new();
    for (_, answers, _) in &cases {
        let answers = ids.answers(answers);
        phone.push(
            e.answer_questionnaire(visit, stored.id, answers.clone())
                .map(|_| ())
                .map_err(|err| err.to_string()),
        );
        batch.push(b.wrap(v1::mutation::Kind::QuestionnaireAnswered(
            v1::QuestionnaireAnswered {
                answers_id: ids::to_wire(ids::new_id()),
                visit_id: ids::to_wire(raw_visit),
                questionnaire_id: stored.id,
                answers,
            },
        )));
    }
    let resp: v1::PushResponse = raw.push(session, batch).await.decode();
    assert_eq!(resp.results.len(), cases.len() + 1);
    assert_eq!(resp.results[0].outcome(), MutationOutcome::Applied);
    for (i, (name, _, verdict)) in cases.iter().enumerate() {
        let expected = verdict
            .as_ref()
            .map(|_| ())
            .map_err(|p| ids.problem(p).to_string());
        let server_result = &resp.results[i + 1];
        let server_verdict = match server_result.outcome() {
            MutationOutcome::Applied => Ok(()),
            _ => Err(server_result.reason.clone()),
        };
        assert_eq!(server_verdict, expected, "server, case: {name}");
        assert_eq!(phone[i], expected, "phone, case: {name}");
    }
    server.stop().await;
}
on_both_backends!(
    questionnaire_rules_give_the_same_verdict_on_the_phone_and_the_server,
    questionnaire_table
);

/// Every order state keeps its name from the database to the wire and back.
#[test]
fn the_order_state_names_are_the_protocol_ones() {
    for s in orders::ALL {
        assert_eq!(v1::OrderState::from_name(s.name()), Some(s));
        assert_eq!(
            fieldsync_server::store::pull::order_state(s.name()),
            s,
            "pull maps {} to the wire",
            s.name()
        );
    }
}

/// Whether an agent may still cancel an order, for every state the distributor can put it in:
/// the phone's engine and the server's ingest give the protocol's verdict
/// (`OrderState::agent_may_cancel`). The server acknowledges a cancellation of an order that
/// is cancelled already as a duplicate; the phone does not offer it.
async fn cancel_table(db: &TestDb) {
    use fieldsync_agent::OrderDraft;
    use fieldsync_server::store::exchange::StatusUpdate;
    use fieldsync_server::store::now_ms;
    let (server, agents) = acme_server(db, 2).await;
    let d = server.store.distributor_id("ACME").await.unwrap();
    let move_to = |order: String, state: v1::OrderState| {
        let store = server.store.clone();
        async move {
            let update = StatusUpdate {
                state: state.name().into(),
                reason: if state.is_refusal() {
                    "test".into()
                } else {
                    String::new()
                },
                lines: Vec::new(),
                delivery_date: String::new(),
                document_number: String::new(),
                document_date: String::new(),
                total_minor: None,
            };
            store
                .set_order_status(d, &order, &update, "test", now_ms())
                .await
                .unwrap()
                .expect("the distributor may make this move from placed");
        }
    };

    let dir = tempfile::tempdir().unwrap();
    let (e, t) = synced_phone(&server, &agents[0], &dir).await;
    let (raw, _) = RawClient::activated(&server.url, &agents[1]).await;
    let session = uuid::Uuid::new_v4();
    let known = Known::from_changes(&raw.pull_all(session).await);
    let mut b = MutationBuilder::new();

    for state in orders::ALL {
        if state == v1::OrderState::Placed {
            continue;
        }
        // The phone: an order placed in a visit and synced, moved on by the distributor, and
        // the status pulled.
        let outlet = e.search_outlets("", 1).unwrap().remove(0);
        let visit = e
            .start_visit(outlet.id, None, vec![fix_at(504_501_000, 305_234_000, 60)])
            .unwrap();
        let products = e.search_products("", outlet.price_list_id, 3).unwrap();
        let order = e
            .place_order(OrderDraft {
                visit_id: Some(visit),
                outlet_id: outlet.id,
                warehouse_id: e.warehouses().unwrap()[0].id,
                lines: products.iter().map(|p| (p.id, 1000)).collect(),
                ..Default::default()
            })
            .unwrap();
        e.end_visit(visit, vec![]).unwrap();
        e.sync(&t).await.unwrap();
        move_to(order.to_string(), state).await;
        e.sync(&t).await.unwrap();
        let phone = e.cancel_order(order, "changed my mind").is_ok();
        assert_eq!(phone, state.agent_may_cancel(), "phone, {}", state.name());

        // The server: the same through raw pushes.
        let visit = ids::new_id();
        let started = b.start_visit(visit, &known.outlets[0]);
        let (order, placed) = b.order(&known, visit, &known.outlets[0], 2);
        let ended = b.end_visit(visit, &known.outlets[0]);
        let batch = vec![started, placed, ended];
        assert_eq!(raw.push(session, batch).await.status, 200);
        move_to(order.to_string(), state).await;
        let cancel = b.wrap(v1::mutation::Kind::OrderCancelled(v1::OrderCancelled {
            order_id: ids::to_wire(order),
            reason: "changed my mind".into(),
        }));
        let resp: v1::PushResponse = raw.push(session, vec![cancel]).await.decode();
        let expected = if state.agent_may_cancel() {
            MutationOutcome::Applied
        } else if state == v1::OrderState::Cancelled {
            MutationOutcome::Duplicate
        } else {
            MutationOutcome::Refused
        };
        assert_eq!(
            resp.results[0].outcome(),
            expected,
            "server, {}",
            state.name()
        );
    }
    server.stop().await;
}
on_both_backends!(
    order_cancellation_gets_the_same_verdict_on_the_phone_and_the_server,
    cancel_table
);
