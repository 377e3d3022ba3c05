//! Copies of message payloads made many to a buffer: one allocation per megabyte instead of
//! one per message (each payload is a [`Bytes`] sharing the buffer, freed with its last one).
//! For sources whose client owns the bytes it hands out (Kafka); sources that read bytes
//! into buffers of their own slice those instead ([`super::lines`]).

use bytes::{Bytes, BytesMut};

use super::lines::BUFFER_BYTES;

#[derive(Default)]
pub struct Payloads {
    /// The unused rest of the current buffer.
    buffer: BytesMut,
}

impl Payloads {
    /// A copy of `payload`.
    pub fn copy(&mut self, payload: &[u8]) -> Bytes {
        if self.buffer.capacity() < payload.len() {
            // A new buffer: the old one stays with the payloads handed out.
            self.buffer = BytesMut::with_capacity(BUFFER_BYTES.max(payload.len()));
        }
        self.buffer.extend_from_slice(payload);
        self.buffer.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_equal_and_independent_across_buffers() {
        let mut payloads = Payloads::default();
        let small: Vec<Bytes> = (0..10_000u32)
            .map(|i| payloads.copy(format!("{{\"i\":{i}}}").as_bytes()))
            .collect();
        let large = payloads.copy(&vec![7; 3 * BUFFER_BYTES]);
        let after = payloads.copy(b"after");
        for (i, copy) in small.iter().enumerate() {
            assert_eq!(copy, format!("{{\"i\":{i}}}").as_bytes());
        }
        assert_eq!(large.len(), 3 * BUFFER_BYTES);
        assert!(large.iter().all(|b| *b == 7));
        assert_eq!(after, &b"after"[..]);
        assert_eq!(payloads.copy(b""), Bytes::new());
    }
}
