//! What makes a filled questionnaire valid. The phone checks it before storing the answers;
//! the server checks the same on ingest and refuses what fails, with the same reason.
//!
//! The rules:
//! - every answer names a question of this questionnaire, at most once, and carries a value;
//! - the value fits the question's type: yes/no, a finite number, text, one of the question's
//!   choices, a non-empty set of its choices, a strict `YYYY-MM-DD` date;
//! - a question with a condition is shown only while its condition holds: a yes/no condition
//!   (`equals_choice_id` 0) holds when the earlier yes/no question is answered `equals_yes`;
//!   a choice condition holds when the earlier single-choice question is answered with that
//!   choice (or the earlier multiple-choice answer includes it);
//! - a required question that is shown must be answered;
//! - a filled questionnaire has at least one answer.
use std::collections::HashMap;

use crate::v1::{Answer, Question, QuestionType, Questionnaire, answer::Value};

/// Why a filled questionnaire is not valid, with the question it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    NoAnswers,
    NotInQuestionnaire(i64),
    EmptyAnswer(i64),
    WrongType(i64, QuestionType),
    AnsweredTwice(i64),
    RequiredMissing(i64),
}

impl Problem {
    /// The question concerned (0 for the whole set).
    pub fn question(&self) -> i64 {
        match self {
            Problem::NoAnswers => 0,
            Problem::NotInQuestionnaire(q)
            | Problem::EmptyAnswer(q)
            | Problem::WrongType(q, _)
            | Problem::AnsweredTwice(q)
            | Problem::RequiredMissing(q) => *q,
        }
    }

    /// A stable key for translation catalogues ("questionnaire.required", ...).
    pub fn key(&self) -> &'static str {
        match self {
            Problem::NoAnswers => "no_answers",
            Problem::NotInQuestionnaire(_) => "not_in_questionnaire",
            Problem::EmptyAnswer(_) => "empty_answer",
            Problem::WrongType(..) => "wrong_type",
            Problem::AnsweredTwice(_) => "answered_twice",
            Problem::RequiredMissing(_) => "required",
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::NoAnswers => write!(f, "a questionnaire needs at least one answer"),
            Problem::NotInQuestionnaire(q) => {
                write!(f, "question {q} is not in this questionnaire")
            }
            Problem::EmptyAnswer(q) => write!(f, "question {q} has an empty answer"),
            Problem::WrongType(q, t) => write!(
                f,
                "question {q}: the answer does not fit a {} question",
                type_name(*t)
            ),
            Problem::AnsweredTwice(q) => write!(f, "question {q} is answered twice"),
            Problem::RequiredMissing(q) => write!(f, "required question {q} is not answered"),
        }
    }
}

/// The name a question type is stored under ("yes_no", ...).
pub fn type_name(t: QuestionType) -> &'static str {
    match t {
        QuestionType::Unspecified => "unspecified",
        QuestionType::YesNo => "yes_no",
        QuestionType::Number => "number",
        QuestionType::Text => "text",
        QuestionType::SingleChoice => "single_choice",
        QuestionType::MultipleChoice => "multiple_choice",
        QuestionType::Date => "date",
    }
}

/// The question type of a stored name (`Unspecified` for anything else: no answer fits it).
pub fn type_from_name(s: &str) -> QuestionType {
    [
        QuestionType::YesNo,
        QuestionType::Number,
        QuestionType::Text,
        QuestionType::SingleChoice,
        QuestionType::MultipleChoice,
        QuestionType::Date,
    ]
    .into_iter()
    .find(|t| type_name(*t) == s)
    .unwrap_or(QuestionType::Unspecified)
}

/// Whether a value fits a question.
fn fits(q: &Question, value: &Value) -> bool {
    let is_choice = |id: &i64| q.choices.iter().any(|c| c.id == *id);
    match (q.r#type(), value) {
        (QuestionType::YesNo, Value::YesNo(_)) | (QuestionType::Text, Value::Text(_)) => true,
        (QuestionType::Number, Value::Number(n)) => n.is_finite(),
        (QuestionType::SingleChoice, Value::SingleChoice(c)) => is_choice(c),
        (QuestionType::MultipleChoice, Value::MultipleChoice(c)) => {
            !c.ids.is_empty() && c.ids.iter().all(is_choice)
        }
        (QuestionType::Date, Value::Date(d)) => crate::dates::is_date(d),
        _ => false,
    }
}

/// Whether a question is shown given the answers so far.
pub fn is_shown(q: &Question, answers: &[Answer]) -> bool {
    let Some(c) = &q.condition else {
        return true;
    };
    let earlier = answers
        .iter()
        .find(|a| a.question_id == c.question_id)
        .and_then(|a| a.value.as_ref());
    match (earlier, c.equals_choice_id) {
        (Some(Value::YesNo(v)), 0) => *v == c.equals_yes,
        (Some(Value::SingleChoice(id)), want) if want != 0 => *id == want,
        (Some(Value::MultipleChoice(ids)), want) if want != 0 => ids.ids.contains(&want),
        _ => false,
    }
}

/// The questions shown given the answers so far, in the questionnaire's order.
pub fn visible<'q>(questionnaire: &'q Questionnaire, answers: &[Answer]) -> Vec<&'q Question> {
    questionnaire
        .questions
        .iter()
        .filter(|q| is_shown(q, answers))
        .collect()
}

/// Whether the phone offers a questionnaire at an outlet of `channel` on `date`
/// ("YYYY-MM-DD"): the date is within its validity (an empty end is open, both ends are
/// included) and it names no channel or the outlet's.
pub fn applies(questionnaire: &Questionnaire, channel: &str, date: &str) -> bool {
    let (from, to) = (&questionnaire.valid_from, &questionnaire.valid_to);
    (from.is_empty() || from.as_str() <= date)
        && (to.is_empty() || date <= to.as_str())
        && (questionnaire.channels.is_empty()
            || questionnaire.channels.iter().any(|c| c == channel))
}

/// Checks a filled questionnaire; the first problem found, in answer order, then question
/// order.
pub fn validate(questionnaire: &Questionnaire, answers: &[Answer]) -> Result<(), Problem> {
    if answers.is_empty() {
        return Err(Problem::NoAnswers);
    }
    let by_id: HashMap<i64, &Question> =
        questionnaire.questions.iter().map(|q| (q.id, q)).collect();
    let mut answered = HashMap::with_capacity(answers.len());
    for a in answers {
        let Some(q) = by_id.get(&a.question_id) else {
            return Err(Problem::NotInQuestionnaire(a.question_id));
        };
        let Some(value) = &a.value else {
            return Err(Problem::EmptyAnswer(q.id));
        };
        if !fits(q, value) {
            return Err(Problem::WrongType(q.id, q.r#type()));
        }
        if answered.insert(q.id, ()).is_some() {
            return Err(Problem::AnsweredTwice(q.id));
        }
    }
    for q in &questionnaire.questions {
        if q.required && is_shown(q, answers) && !answered.contains_key(&q.id) {
            return Err(Problem::RequiredMissing(q.id));
        }
    }
    Ok(())
}

/// A table of filled questionnaires and their verdicts, for checking that every engine that
/// validates answers (the phone's, the server's ingest) agrees. The questionnaire is
/// [`case_questionnaire`].
pub fn cases() -> Vec<(&'static str, Vec<Answer>, Result<(), Problem>)> {
    use crate::v1::ChoiceIds;
    let a = |question_id: i64, value: Value| Answer {
        question_id,
        value: Some(value),
    };
    // 1 yes/no "stocked?" required; 2 number "facings" required when 1 is yes;
    // 3 single choice {31, 32} required; 4 text, shown when 3 is 32, required;
    // 5 multiple choice {51, 52}; 6 date; 7 number optional.
    let stocked = |yes: bool| a(1, Value::YesNo(yes));
    let shelf = |choice: i64| a(3, Value::SingleChoice(choice));
    let base = || vec![stocked(false), shelf(31)];
    let with = |extra: Vec<Answer>| {
        let mut v = base();
        v.extend(extra);
        v
    };
    vec![
        ("the smallest complete set", base(), Ok(())),
        ("no answers", vec![], Err(Problem::NoAnswers)),
        (
            "a required question missing",
            vec![shelf(31)],
            Err(Problem::RequiredMissing(1)),
        ),
        (
            "a yes/no condition that holds makes its question required",
            vec![stocked(true), shelf(31)],
            Err(Problem::RequiredMissing(2)),
        ),
        (
            "the conditional question answered",
            vec![stocked(true), a(2, Value::Number(4.0)), shelf(31)],
            Ok(()),
        ),
        (
            "a choice condition that holds makes its question required",
            vec![stocked(false), shelf(32)],
            Err(Problem::RequiredMissing(4)),
        ),
        (
            "the choice-conditional question answered",
            vec![
                stocked(false),
                shelf(32),
                a(4, Value::Text("back door".into())),
            ],
            Ok(()),
        ),
        (
            "a question answered twice",
            with(vec![a(7, Value::Number(1.0)), a(7, Value::Number(2.0))]),
            Err(Problem::AnsweredTwice(7)),
        ),
        (
            "a question of another questionnaire",
            with(vec![a(99, Value::Text("x".into()))]),
            Err(Problem::NotInQuestionnaire(99)),
        ),
        (
            "an answer without a value",
            with(vec![Answer {
                question_id: 7,
                value: None,
            }]),
            Err(Problem::EmptyAnswer(7)),
        ),
        (
            "text for a number",
            with(vec![a(7, Value::Text("4".into()))]),
            Err(Problem::WrongType(7, QuestionType::Number)),
        ),
        (
            "not a number",
            with(vec![a(7, Value::Number(f64::NAN))]),
            Err(Problem::WrongType(7, QuestionType::Number)),
        ),
        (
            "a choice the question does not have",
            vec![stocked(false), shelf(51)],
            Err(Problem::WrongType(3, QuestionType::SingleChoice)),
        ),
        (
            "several choices",
            with(vec![a(
                5,
                Value::MultipleChoice(ChoiceIds { ids: vec![51, 52] }),
            )]),
            Ok(()),
        ),
        (
            "an empty multiple choice",
            with(vec![a(5, Value::MultipleChoice(ChoiceIds { ids: vec![] }))]),
            Err(Problem::WrongType(5, QuestionType::MultipleChoice)),
        ),
        (
            "a leap day",
            with(vec![a(6, Value::Date("2028-02-29".into()))]),
            Ok(()),
        ),
        (
            "a day that does not exist",
            with(vec![a(6, Value::Date("2026-02-29".into()))]),
            Err(Problem::WrongType(6, QuestionType::Date)),
        ),
        (
            "a date in another layout",
            with(vec![a(6, Value::Date("01.03.2026".into()))]),
            Err(Problem::WrongType(6, QuestionType::Date)),
        ),
        (
            "a yes/no answer for a choice question",
            vec![stocked(false), a(3, Value::YesNo(true))],
            Err(Problem::WrongType(3, QuestionType::SingleChoice)),
        ),
    ]
}

/// The questionnaire [`cases`] are written for.
pub fn case_questionnaire(id: i64) -> Questionnaire {
    use crate::v1::{Choice, Condition};
    let q = |qid: i64,
             t: QuestionType,
             required: bool,
             choices: &[i64],
             condition: Option<Condition>| {
        let mut q = Question {
            id: qid,
            text: format!("question {qid}"),
            required,
            choices: choices
                .iter()
                .map(|c| Choice {
                    id: *c,
                    label: format!("choice {c}"),
                })
                .collect(),
            condition,
            position: qid as u32,
            ..Default::default()
        };
        q.set_type(t);
        q
    };
    Questionnaire {
        id,
        name: "rule table".into(),
        questions: vec![
            q(1, QuestionType::YesNo, true, &[], None),
            q(
                2,
                QuestionType::Number,
                true,
                &[],
                Some(Condition {
                    question_id: 1,
                    equals_yes: true,
                    equals_choice_id: 0,
                }),
            ),
            q(3, QuestionType::SingleChoice, true, &[31, 32], None),
            q(
                4,
                QuestionType::Text,
                true,
                &[],
                Some(Condition {
                    question_id: 3,
                    equals_yes: false,
                    equals_choice_id: 32,
                }),
            ),
            q(5, QuestionType::MultipleChoice, false, &[51, 52], None),
            q(6, QuestionType::Date, false, &[], None),
            q(7, QuestionType::Number, false, &[], None),
        ],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_questionnaire_applies_within_its_dates_and_to_its_channels() {
        let mut q = case_questionnaire(1);
        assert!(
            applies(&q, "", "2026-01-01"),
            "no limits: everywhere, always"
        );
        q.valid_from = "2026-06-01".into();
        q.valid_to = "2026-06-30".into();
        q.channels = vec!["horeca".into()];
        assert!(applies(&q, "horeca", "2026-06-01"));
        assert!(applies(&q, "horeca", "2026-06-30"));
        assert!(!applies(&q, "horeca", "2026-05-31"));
        assert!(!applies(&q, "horeca", "2026-07-01"));
        assert!(!applies(&q, "retail", "2026-06-15"));
    }

    #[test]
    fn the_rule_table_holds() {
        let q = case_questionnaire(1);
        for (name, answers, verdict) in cases() {
            assert_eq!(validate(&q, &answers), verdict, "{name}");
        }
    }
}
