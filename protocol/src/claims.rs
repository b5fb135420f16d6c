//! Claims on delivered goods: their stages, the moves between them and the limits of a claim,
//! shared by the phone (which refuses locally what the server would refuse) and the server.
use crate::v1::{self, ClaimStage};

/// Most lines one claim holds.
pub const MAX_LINES: usize = 200;
/// Longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 1000;
/// Longest answer of the distributor, in characters.
pub const MAX_ANSWER_CHARS: usize = 1000;

/// The stage's name, as SQL, the API and the screens use it.
pub fn stage_name(s: ClaimStage) -> &'static str {
    match s {
        ClaimStage::ClaimDraft | ClaimStage::Unspecified => "draft",
        ClaimStage::ClaimRegistered => "registered",
        ClaimStage::ClaimBeingConsidered => "being_considered",
        ClaimStage::ClaimAccepted => "accepted",
        ClaimStage::ClaimDeclined => "declined",
    }
}

/// The stage of a name; `None` for an unknown one.
pub fn stage_from_name(s: &str) -> Option<ClaimStage> {
    Some(match s {
        "draft" => ClaimStage::ClaimDraft,
        "registered" => ClaimStage::ClaimRegistered,
        "being_considered" => ClaimStage::ClaimBeingConsidered,
        "accepted" => ClaimStage::ClaimAccepted,
        "declined" => ClaimStage::ClaimDeclined,
        _ => return None,
    })
}

/// Whether the distributor may move a claim from `from` to `to`: Registered → Being
/// considered → Accepted or Declined (deciding straight from Registered is allowed). Drafts
/// belong to the agent; a decision is final.
pub fn distributor_move_allowed(from: ClaimStage, to: ClaimStage) -> bool {
    use ClaimStage::*;
    matches!(
        (from, to),
        (ClaimRegistered, ClaimBeingConsidered)
            | (ClaimRegistered, ClaimAccepted)
            | (ClaimRegistered, ClaimDeclined)
            | (ClaimBeingConsidered, ClaimAccepted)
            | (ClaimBeingConsidered, ClaimDeclined)
    )
}

/// What is wrong with a claim's content, if anything (references are checked by whoever
/// holds them).
pub fn check(c: &v1::ClaimSaved) -> Result<(), String> {
    if c.lines.is_empty() {
        return Err("a claim needs at least one line".into());
    }
    if c.lines.len() > MAX_LINES {
        return Err(format!("a claim has at most {MAX_LINES} lines"));
    }
    if c.comment.chars().count() > MAX_COMMENT_CHARS {
        return Err(format!(
            "the comment is longer than {MAX_COMMENT_CHARS} characters"
        ));
    }
    for (i, l) in c.lines.iter().enumerate() {
        if l.quantity_milli <= 0 {
            return Err(format!("line {}: the quantity must be positive", i + 1));
        }
        if l.type_id <= 0 {
            return Err(format!("line {}: a claim type is required", i + 1));
        }
        if l.order_id.len() != 16 || l.line_no == 0 {
            return Err(format!("line {}: it must name an order line", i + 1));
        }
    }
    let mut seen = std::collections::HashSet::new();
    if !c
        .lines
        .iter()
        .all(|l| seen.insert((l.order_id.clone(), l.line_no)))
    {
        return Err("an order line is claimed twice".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_distributor_moves_a_claim_forward_only_and_a_decision_is_final() {
        use ClaimStage::*;
        assert!(distributor_move_allowed(
            ClaimRegistered,
            ClaimBeingConsidered
        ));
        assert!(distributor_move_allowed(
            ClaimBeingConsidered,
            ClaimDeclined
        ));
        assert!(!distributor_move_allowed(ClaimDraft, ClaimRegistered));
        assert!(!distributor_move_allowed(ClaimAccepted, ClaimDeclined));
        assert!(!distributor_move_allowed(
            ClaimBeingConsidered,
            ClaimRegistered
        ));
        for s in [
            ClaimDraft,
            ClaimRegistered,
            ClaimBeingConsidered,
            ClaimAccepted,
            ClaimDeclined,
        ] {
            assert_eq!(stage_from_name(stage_name(s)), Some(s));
        }
    }

    #[test]
    fn a_claim_needs_lines_with_positive_quantities_types_and_no_line_twice() {
        let line = v1::ClaimLine {
            order_id: vec![1; 16],
            line_no: 1,
            quantity_milli: 1000,
            type_id: 3,
            subtype_id: 0,
        };
        let ok = v1::ClaimSaved {
            lines: vec![line.clone()],
            ..Default::default()
        };
        assert!(check(&ok).is_ok());
        let bad = |f: &dyn Fn(&mut v1::ClaimSaved)| {
            let mut c = ok.clone();
            f(&mut c);
            check(&c).unwrap_err()
        };
        assert!(bad(&|c| c.lines.clear()).contains("at least one"));
        assert!(bad(&|c| c.lines[0].quantity_milli = 0).contains("positive"));
        assert!(bad(&|c| c.lines[0].type_id = 0).contains("type"));
        assert!(bad(&|c| c.lines.push(c.lines[0].clone())).contains("twice"));
        assert!(bad(&|c| c.comment = "x".repeat(1001)).contains("comment"));
    }
}
