//! Inside a visit: the questionnaire forms (every question type, required and conditional
//! questions, validation) and the distribution check of the must-stock list.
use dioxus::prelude::*;
use fieldsync_agent::{Engine, WorkflowError};
use fieldsync_protocol::v1::{self, QuestionType, answer::Value};
use uuid::Uuid;

use super::{ErrorLine, Screen, VisitTab, use_screen};

#[component]
pub fn QuestionnaireTab(visit: Uuid, id: Option<i64>, validate: bool) -> Element {
    let (ctx, t, nav, revision) = use_screen();
    revision.watch();
    if let Some(id) = id {
        return rsx! { QuestionnaireForm { key: "{id}", visit, id, validate } };
    }
    let done = ctx
        .engine
        .visit_activity(visit)
        .map(|a| a.questionnaires)
        .unwrap_or_default();
    let all = ctx
        .engine
        .questionnaires_for_visit(visit)
        .unwrap_or_default();
    if all.is_empty() {
        return rsx! { p { class: "muted", "{t.s(\"questionnaire.none\")}" } };
    }
    rsx! {
        ul { class: "list", id: "questionnaires",
            for q in all {
                li { key: "{q.id}", id: "q-open-{q.id}", class: "clickable",
                    onclick: move |_| nav.replace(Screen::Visit { visit, tab: VisitTab::Questionnaire { id: Some(q.id), validate: false } }),
                    div { class: "grow",
                        "{q.name}"
                        div { class: "muted", "{t.f(\"questionnaire.questions\", &[(\"n\", q.questions.len().to_string())])}" }
                    }
                    if q.questions.iter().any(|x| x.required && x.condition.is_none()) {
                        span { class: "badge", "{t.s(\"questionnaire.required\")}" }
                    }
                    if done.contains(&q.id) {
                        span { class: "badge done", "{t.s(\"questionnaire.answered\")}" }
                    }
                }
            }
        }
    }
}

fn set_answer(answers: &mut Vec<v1::Answer>, question_id: i64, value: Option<Value>) {
    answers.retain(|a| a.question_id != question_id);
    if let Some(value) = value {
        answers.push(v1::Answer {
            question_id,
            value: Some(value),
        });
    }
}

fn answer_of(answers: &[v1::Answer], question_id: i64) -> Option<Value> {
    answers
        .iter()
        .find(|a| a.question_id == question_id)
        .and_then(|a| a.value.clone())
}

/// What is wrong with each visible question, given the answers (and numbers that did not parse).
fn problems(
    q: &v1::Questionnaire,
    answers: &[v1::Answer],
    unparsed: &[i64],
) -> Vec<(i64, &'static str)> {
    let visible = Engine::visible_questions(q, answers);
    let mut out = Vec::new();
    for question in &visible {
        if unparsed.contains(&question.id) {
            out.push((question.id, "questionnaire.not_a_number"));
        } else if question.required && answer_of(answers, question.id).is_none() {
            out.push((question.id, "questionnaire.answer_required"));
        }
    }
    out
}

#[component]
fn QuestionnaireForm(visit: Uuid, id: i64, validate: bool) -> Element {
    let (ctx, t, nav, revision) = use_screen();
    let answers = use_signal(Vec::<v1::Answer>::new);
    let unparsed = use_signal(Vec::<i64>::new);
    let mut attempted = use_signal(|| validate);
    let mut message = use_signal(|| None::<String>);
    let Ok(Some(q)) = ctx.engine.questionnaire(id) else {
        return rsx! { ErrorLine { message: t.s("questionnaire.unknown").to_string() } };
    };
    let visible = Engine::visible_questions(&q, &answers.read());
    let found = problems(&q, &answers.read(), &unparsed.read());
    let show = attempted();
    let save = {
        let ctx = ctx.clone();
        let q = q.clone();
        move |_| {
            attempted.set(true);
            if !problems(&q, &answers.read(), &unparsed.read()).is_empty() {
                message.set(Some(t.s("questionnaire.fix_marked").to_string()));
                return;
            }
            // Only what is shown is sent: answers to questions hidden again are dropped.
            let shown = Engine::visible_questions(&q, &answers.read());
            let to_send: Vec<v1::Answer> = answers
                .read()
                .iter()
                .filter(|a| shown.iter().any(|s| s.id == a.question_id))
                .cloned()
                .collect();
            match ctx.engine.answer_questionnaire(visit, id, to_send) {
                Ok(_) => {
                    revision.bump();
                    nav.replace(Screen::Visit {
                        visit,
                        tab: VisitTab::Questionnaire {
                            id: None,
                            validate: false,
                        },
                    });
                }
                Err(WorkflowError::InvalidAnswer { question: 0, .. }) => {
                    message.set(Some(t.s("questionnaire.empty").to_string()))
                }
                Err(e) => message.set(Some(t.workflow_error(&e))),
            }
        }
    };
    rsx! {
        form { id: "questionnaire-form", onsubmit: move |e| e.prevent_default(),
            h3 { "{q.name}" }
            for question in visible {
                div { key: "{question.id}", class: "question", id: "question-{question.id}",
                    label { r#for: "answer-{question.id}",
                        "{question.text}"
                        if question.required { span { class: "field-error", " *" } }
                    }
                    {question_input(t, &question, answer_of(&answers.read(), question.id), answers, unparsed)}
                    if show {
                        for (_, key) in found.iter().filter(|(qid, _)| *qid == question.id) {
                            div { class: "field-error", role: "alert", "{t.s(key)}" }
                        }
                    }
                }
            }
            if let Some(m) = message() { ErrorLine { message: m } }
            div { class: "row",
                button { id: "save-answers", class: "primary", r#type: "button", onclick: save, "{t.s(\"questionnaire.save\")}" }
            }
        }
    }
}

fn question_input(
    t: crate::i18n::T,
    q: &v1::Question,
    current: Option<Value>,
    mut answers: Signal<Vec<v1::Answer>>,
    mut unparsed: Signal<Vec<i64>>,
) -> Element {
    let qid = q.id;
    match q.r#type() {
        QuestionType::YesNo => {
            let is = |b: bool| current == Some(Value::YesNo(b));
            rsx! {
                div { class: "row",
                    label { input { r#type: "radio", name: "q{qid}", id: "answer-{qid}-yes", checked: is(true),
                        onchange: move |_| set_answer(&mut answers.write(), qid, Some(Value::YesNo(true))) } " {t.s(\"common.yes\")}" }
                    label { input { r#type: "radio", name: "q{qid}", id: "answer-{qid}-no", checked: is(false),
                        onchange: move |_| set_answer(&mut answers.write(), qid, Some(Value::YesNo(false))) } " {t.s(\"common.no\")}" }
                }
            }
        }
        QuestionType::Number => {
            let shown = match current {
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            rsx! {
                input { id: "answer-{qid}", inputmode: "decimal", value: "{shown}",
                    oninput: move |e| {
                        let raw = e.value().trim().replace(',', ".");
                        unparsed.write().retain(|x| *x != qid);
                        if raw.is_empty() {
                            set_answer(&mut answers.write(), qid, None);
                        } else if let Ok(n) = raw.parse::<f64>().map_err(|_| ()).and_then(|n| if n.is_finite() { Ok(n) } else { Err(()) }) {
                            set_answer(&mut answers.write(), qid, Some(Value::Number(n)));
                        } else {
                            set_answer(&mut answers.write(), qid, None);
                            unparsed.write().push(qid);
                        }
                    } }
            }
        }
        QuestionType::Text => {
            let shown = match current {
                Some(Value::Text(s)) => s,
                _ => String::new(),
            };
            rsx! {
                textarea { id: "answer-{qid}", value: "{shown}",
                    oninput: move |e| {
                        let v = e.value();
                        set_answer(&mut answers.write(), qid, (!v.trim().is_empty()).then_some(Value::Text(v)));
                    } }
            }
        }
        QuestionType::SingleChoice => rsx! {
            for c in q.choices.clone() {
                label { key: "{c.id}",
                    input { r#type: "radio", name: "q{qid}", id: "answer-{qid}-{c.id}",
                        checked: current == Some(Value::SingleChoice(c.id)),
                        onchange: move |_| set_answer(&mut answers.write(), qid, Some(Value::SingleChoice(c.id))) }
                    " {c.label}"
                }
            }
        },
        QuestionType::MultipleChoice => {
            let chosen: Vec<i64> = match &current {
                Some(Value::MultipleChoice(c)) => c.ids.clone(),
                _ => Vec::new(),
            };
            rsx! {
                for c in q.choices.clone() {
                    label { key: "{c.id}",
                        input { r#type: "checkbox", id: "answer-{qid}-{c.id}", checked: chosen.contains(&c.id),
                            onchange: {
                                let chosen = chosen.clone();
                                move |e: FormEvent| {
                                    let mut ids: Vec<i64> = chosen.iter().copied().filter(|x| *x != c.id).collect();
                                    if e.checked() { ids.push(c.id); ids.sort_unstable(); }
                                    set_answer(&mut answers.write(), qid, (!ids.is_empty()).then_some(Value::MultipleChoice(v1::ChoiceIds { ids })));
                                }
                            } }
                        " {c.label}"
                    }
                }
            }
        }
        QuestionType::Date => {
            let shown = match current {
                Some(Value::Date(d)) => d,
                _ => String::new(),
            };
            rsx! {
                input { r#type: "date", id: "answer-{qid}", value: "{shown}",
                    oninput: move |e| {
                        let v = e.value();
                        set_answer(&mut answers.write(), qid, (!v.is_empty()).then_some(Value::Date(v)));
                    } }
            }
        }
        QuestionType::Unspecified => rsx! {},
    }
}

#[component]
pub fn DistributionTab(visit: Uuid) -> Element {
    let (ctx, t, nav, revision) = use_screen();
    let mut marks = use_signal(Vec::<(i64, bool)>::new);
    let mut message = use_signal(|| None::<String>);
    // The must-stock products for the channel of the visit's outlet.
    let outlet = ctx.engine.visit(visit).ok().flatten().map(|v| v.outlet_id);
    let products = outlet
        .and_then(|o| ctx.engine.must_stock_for(o).ok())
        .unwrap_or_default();
    if products.is_empty() {
        return rsx! { p { class: "muted", "{t.s(\"distribution.none\")}" } };
    }
    let mark_of = move |pid: i64| marks.read().iter().find(|m| m.0 == pid).map(|m| m.1);
    let mut set = move |pid: i64, present: bool| {
        let mut m = marks.write();
        m.retain(|x| x.0 != pid);
        m.push((pid, present));
    };
    let total = products.len();
    let marked = marks.read().len();
    let save = {
        let ctx = ctx.clone();
        move |_| match ctx.engine.check_distribution(visit, marks()) {
            Ok(_) => {
                revision.bump();
                nav.replace(Screen::Visit {
                    visit,
                    tab: VisitTab::Summary,
                });
            }
            Err(e) => message.set(Some(t.workflow_error(&e))),
        }
    };
    let all_present = {
        let ids: Vec<i64> = products.iter().map(|p| p.id).collect();
        move |_| marks.set(ids.iter().map(|id| (*id, true)).collect())
    };
    rsx! {
        p { class: "muted", id: "distribution-progress", "{t.f(\"distribution.marked\", &[(\"marked\", marked.to_string()), (\"total\", total.to_string())])}" }
        button { id: "all-present", onclick: all_present, "{t.s(\"distribution.all_present\")}" }
        ul { class: "list", id: "must-stock",
            for p in products {
                li { key: "{p.id}",
                    div { class: "grow", "{p.name}" div { class: "muted", "{p.code}" } }
                    button { id: "present-{p.code}", class: if mark_of(p.id) == Some(true) { "primary" } else { "" },
                        onclick: move |_| set(p.id, true), "{t.s(\"distribution.present\")}" }
                    button { id: "absent-{p.code}", class: if mark_of(p.id) == Some(false) { "danger" } else { "" },
                        onclick: move |_| set(p.id, false), "{t.s(\"distribution.absent\")}" }
                }
            }
        }
        if let Some(m) = message() { ErrorLine { message: m } }
        button { id: "save-distribution", class: "primary", disabled: marked == 0, onclick: save, "{t.s(\"distribution.save\")}" }
    }
}
