//! Ids: client-generated UUIDv7 values travel as 16 raw bytes.
use uuid::Uuid;

/// A fresh UUIDv7 (time-ordered, random tail).
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// Reads a 16-byte id from the wire; `None` when the length is wrong.
pub fn from_wire(bytes: &[u8]) -> Option<Uuid> {
    let arr: [u8; 16] = bytes.try_into().ok()?;
    let id = Uuid::from_bytes(arr);
    (!id.is_nil()).then_some(id)
}

/// Writes an id for the wire.
pub fn to_wire(id: Uuid) -> Vec<u8> {
    id.as_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_wrong_lengths_are_rejected() {
        let id = new_id();
        assert_eq!(from_wire(&to_wire(id)), Some(id));
        assert_eq!(from_wire(&[1, 2, 3]), None);
        assert_eq!(from_wire(&[0; 16]), None);
    }
}
