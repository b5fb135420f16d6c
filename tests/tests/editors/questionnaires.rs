//! The questionnaire editor (a module of `master_data_editors`, sharing its world, browser and
//! phone): a key user builds a questionnaire with a yes/no question, a number question asked
//! only when it is yes, and a required single-choice question; the phone's engine enforces the
//! condition and the required flags. Invalid conditions (on a later question, on a text
//! question) are refused and change nothing. Once a visit answered it, editing a question
//! makes a new version: the phone gets it and loses the old one, and the visit card still
//! shows the old answers with the old question text.
use fieldsync_protocol::v1::{self, answer::Value};

use super::*;

/// The (id, version, superseded_by) of questionnaire `id`.
async fn stored(s: &Store, id: i64) -> (i64, i64, Option<i64>) {
    sqlx::query_as("SELECT id, version, superseded_by FROM questionnaires WHERE id = $1")
        .bind(id)
        .fetch_one(s.test_pool())
        .await
        .unwrap()
}

/// The questions of questionnaire `id` (id, position, text, condition question).
async fn questions(s: &Store, id: i64) -> Vec<(i64, i64, String, Option<i64>)> {
    sqlx::query_as(
        "SELECT id, position, text, condition_question_id FROM questions WHERE questionnaire_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(s.test_pool())
    .await
    .unwrap()
}

/// The id in the card's URL.
async fn card_id(b: &Browser) -> i64 {
    let url = b.current_url().await;
    url.rsplit('/')
        .next()
        .unwrap()
        .parse()
        .expect("a card's URL")
}

/// Adds a question on the open card; `condition` is an option's value of its condition select.
async fn add_question(
    b: &Browser,
    text: &str,
    kind: &str,
    required: bool,
    choices: &str,
    condition: &str,
) {
    b.run("document.querySelector('#add-question').open = true")
        .await;
    b.fill("#q-text", text).await;
    b.run(&format!(
        "document.getElementById('q-type').value = '{kind}'"
    ))
    .await;
    if required {
        b.run("document.getElementById('q-required').click()").await;
    }
    b.run(&format!(
        "document.getElementById('q-choices').value = {choices:?}"
    ))
    .await;
    // An option the select does not offer is added, as a forged form would send it.
    b.run(&format!(
        "const s = document.getElementById('q-condition'); \
         if (![...s.options].some(o => o.value === '{condition}')) s.add(new Option('x', '{condition}')); \
         s.value = '{condition}'"
    ))
    .await;
    b.click("#save-new-question").await;
}

fn answer(question_id: i64, value: Value) -> v1::Answer {
    v1::Answer {
        question_id,
        value: Some(value),
    }
}

pub async fn questionnaire_editor(w: &Ctx, b: &Browser) -> (String, &'static str) {
    let (agents, d, url, s) = w.parts();
    let phone = Phone::activated(url, &agents[0]).await;

    // Create it from the list page: the card opens, without questions.
    b.goto(&format!("{url}/questionnaires")).await;
    b.run("document.querySelector('#create-questionnaire').open = true")
        .await;
    b.fill("#questionnaire-name", "Fridge audit").await;
    b.click("#save-new-questionnaire").await;
    let id = card_id(b).await;
    assert_eq!(stored(s, id).await, (id, 1, None));
    let (owner,): (i64,) =
        sqlx::query_as("SELECT distributor_id FROM questionnaires WHERE id = $1")
            .bind(id)
            .fetch_one(s.test_pool())
            .await
            .unwrap();
    assert_eq!(owner, d);

    // A yes/no question A, a required number question B asked only when A is yes, a
    // required single choice C and a text question D.
    add_question(b, "Branded fridge?", "yes_no", false, "", "").await;
    let a = questions(s, id).await[0].0;
    add_question(
        b,
        "How many facings?",
        "number",
        true,
        "",
        &format!("y:{a}"),
    )
    .await;
    add_question(
        b,
        "Where is it?",
        "single_choice",
        true,
        "Entrance\nCashier",
        "",
    )
    .await;
    add_question(b, "Comment", "text", false, "", "").await;
    let qs = questions(s, id).await;
    assert_eq!(qs.len(), 4, "{}", b.text("body").await);
    let (bq, cq, dq) = (qs[1].0, qs[2].0, qs[3].0);
    assert_eq!(qs[1].3, Some(a));
    assert_eq!(
        b.text("#question-2 td.condition").await,
        "when question 1 is yes"
    );

    // A condition on a later question, or on a text question, is refused; nothing changes.
    let (entrance,): (i64,) = sqlx::query_as(
        "SELECT id FROM question_choices WHERE question_id = $1 AND label = 'Entrance'",
    )
    .bind(cq)
    .fetch_one(s.test_pool())
    .await
    .unwrap();
    b.run("document.querySelector('#question-1 details.edit-question').open = true")
        .await;
    b.run(&format!(
        "document.getElementById('q-condition-1').value = 'c:{cq}:{entrance}'"
    ))
    .await;
    b.click("#save-question-1").await;
    assert!(
        refused(b, "earlier question").await,
        "{}",
        b.text("body").await
    );
    b.goto(&format!("{url}/questionnaires/{id}")).await;
    add_question(b, "Why not?", "text", false, "", &format!("y:{dq}")).await;
    assert!(
        refused(b, "yes/no question").await,
        "{}",
        b.text("body").await
    );
    assert_eq!(
        questions(s, id).await,
        qs,
        "the refused edits changed nothing"
    );
    assert_eq!(stored(s, id).await, (id, 1, None));

    // The phone gets it and its engine enforces the condition and the required flags.
    phone.sync().await;
    let on_phone = phone
        .engine
        .questionnaire(id)
        .unwrap()
        .expect("on the phone");
    assert_eq!(on_phone.questions.len(), 4);
    let outlet = phone.engine.search_outlets("", 1).unwrap()[0].id;
    let visit = phone.engine.start_visit(outlet, None, vec![]).unwrap();
    let (yes, no) = (
        answer(a, Value::YesNo(true)),
        answer(a, Value::YesNo(false)),
    );
    let place = answer(cq, Value::SingleChoice(entrance));
    let refused_for =
        |answers: Vec<v1::Answer>| match phone.engine.answer_questionnaire(visit, id, answers) {
            Err(fieldsync_agent::WorkflowError::InvalidAnswer { question, .. }) => question,
            other => panic!("not refused: {other:?}"),
        };
    assert_eq!(
        refused_for(vec![yes.clone(), place.clone()]),
        bq,
        "B is asked when A is yes"
    );
    assert_eq!(refused_for(vec![no.clone()]), cq, "C is required");
    phone
        .engine
        .answer_questionnaire(visit, id, vec![no, place])
        .expect("B is not asked when A is no");
    phone.engine.end_visit(visit, vec![]).unwrap();
    phone.sync().await;
    let (answered,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM questionnaire_answers WHERE questionnaire_id = $1")
            .bind(id)
            .fetch_one(s.test_pool())
            .await
            .unwrap();
    assert_eq!(answered, 2);

    // Editing A now makes version 2: the old version keeps its questions and answers.
    b.goto(&format!("{url}/questionnaires/{id}")).await;
    assert!(b.find_opt("#versioned-note").await.is_some());
    b.run("document.querySelector('#question-1 details.edit-question').open = true")
        .await;
    b.fill("#q-text-1", "Branded fridge, red?").await;
    b.click("#save-question-1").await;
    let new = card_id(b).await;
    assert_ne!(new, id);
    assert_eq!(stored(s, new).await, (new, 2, None));
    assert_eq!(stored(s, id).await, (id, 1, Some(new)));
    assert_eq!(b.text("#version").await, "2");
    assert_eq!(
        questions(s, id).await,
        qs,
        "the old version is not rewritten"
    );
    let copied = questions(s, new).await;
    assert_eq!(copied[0].2, "Branded fridge, red?");
    assert_eq!(
        copied[1].3,
        Some(copied[0].0),
        "B's condition follows A into the copy"
    );

    // The phone gets the new version and loses the old one.
    phone.sync().await;
    assert!(
        phone.engine.questionnaire(id).unwrap().is_none(),
        "the old version left the phone"
    );
    let on_phone = phone
        .engine
        .questionnaire(new)
        .unwrap()
        .expect("the new version");
    assert_eq!(on_phone.questions[0].text, "Branded fridge, red?");
    assert_eq!(on_phone.version, 2);

    // The visit card shows the old answers with the old question text.
    b.goto(&format!("{url}/visits/{visit}")).await;
    let answers = b.text("#visit-answers").await;
    assert!(answers.contains("Branded fridge?"), "{answers}");
    assert!(!answers.contains("red?"), "{answers}");
    // Another distributor's key user cannot open it, even by URL.
    (format!("/questionnaires/{new}"), "#add-question")
}
