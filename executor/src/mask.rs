//! The streaming masker: replaces secret values (and their base64 form) by `[MASKED]`
//! in a byte stream cut into chunks anywhere, a secret split across chunks included.
//!
//! Bytes that could be the start of a secret are held back until the next chunk tells
//! whether they are one; everything else passes at once.

use base64::Engine;

const REPLACEMENT: &[u8] = b"[MASKED]";

/// Masks a byte stream. Feed chunks to [`Masker::push`], then call [`Masker::finish`].
#[derive(Debug, Clone, Default)]
pub struct Masker {
    secrets: Vec<Vec<u8>>,
    /// `first[b]`: some secret starts with byte `b`.
    first: Vec<bool>,
    pending: Vec<u8>,
}

impl Masker {
    /// A masker for these values and their base64 encodings (padding left off, so the
    /// value is found in a longer base64 text that starts with it too). Empty values are
    /// ignored.
    pub fn new<S: AsRef<str>>(values: &[S]) -> Masker {
        let mut secrets: Vec<Vec<u8>> = Vec::new();
        for value in values {
            let value = value.as_ref();
            if value.is_empty() {
                continue;
            }
            secrets.push(value.as_bytes().to_vec());
            let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(value);
            secrets.push(encoded.into_bytes());
        }
        secrets.sort();
        secrets.dedup();
        let mut first = vec![false; 256];
        for secret in &secrets {
            first[usize::from(secret[0])] = true;
        }
        Masker {
            secrets,
            first,
            pending: Vec::new(),
        }
    }

    /// Masks one more chunk; returns the bytes that are safe to show now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.secrets.is_empty() {
            return chunk.to_vec();
        }
        self.pending.extend_from_slice(chunk);
        self.scan(false)
    }

    /// The end of the stream: returns what was held back, masked.
    pub fn finish(&mut self) -> Vec<u8> {
        self.scan(true)
    }

    fn scan(&mut self, last: bool) -> Vec<u8> {
        let data = std::mem::take(&mut self.pending);
        let mut out = Vec::with_capacity(data.len());
        let mut i = 0;
        while i < data.len() {
            if !self.first[usize::from(data[i])] {
                out.push(data[i]);
                i += 1;
                continue;
            }
            let rest = &data[i..];
            let mut longest_match = 0;
            let mut maybe_longer = false;
            for secret in &self.secrets {
                if rest.starts_with(secret) {
                    longest_match = longest_match.max(secret.len());
                } else if !last && secret.len() > rest.len() && secret.starts_with(rest) {
                    maybe_longer = true;
                }
            }
            if maybe_longer {
                // A secret may continue in the next chunk: keep the rest for then.
                self.pending = rest.to_vec();
                return out;
            }
            if longest_match > 0 {
                out.extend_from_slice(REPLACEMENT);
                i += longest_match;
            } else {
                out.push(data[i]);
                i += 1;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask_in_chunks(values: &[&str], input: &[u8], chunk: usize) -> Vec<u8> {
        let mut masker = Masker::new(values);
        let mut out = Vec::new();
        for part in input.chunks(chunk) {
            out.extend(masker.push(part));
        }
        out.extend(masker.finish());
        out
    }

    #[test]
    fn masks_a_value_whatever_the_chunk_size() {
        let input = b"user=admin password=s3cr3t-pass! end";
        for chunk in 1..input.len() + 1 {
            assert_eq!(
                mask_in_chunks(&["s3cr3t-pass!"], input, chunk),
                b"user=admin password=[MASKED] end".to_vec(),
                "chunk size {chunk}"
            );
        }
    }

    #[test]
    fn masks_the_base64_form() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("s3cr3t-pass!");
        let input = format!("token {encoded}\n");
        for chunk in 1..input.len() + 1 {
            assert_eq!(
                mask_in_chunks(&["s3cr3t-pass!"], input.as_bytes(), chunk),
                b"token [MASKED]\n".to_vec()
            );
        }
    }

    #[test]
    fn keeps_everything_else_byte_for_byte() {
        let input: Vec<u8> = (0..=255u8).chain(b"\r\nse".iter().copied()).collect();
        assert_eq!(mask_in_chunks(&["secret"], &input, 7), input);
        assert_eq!(mask_in_chunks(&[], &input, 3), input);
    }

    #[test]
    fn prefers_the_longest_of_overlapping_values() {
        let input = b"abc abcdef ab";
        assert_eq!(
            mask_in_chunks(&["abc", "abcdef"], input, 2),
            b"[MASKED] [MASKED] ab".to_vec()
        );
    }

    #[test]
    fn a_partial_value_at_the_end_is_shown() {
        assert_eq!(
            mask_in_chunks(&["secret"], b"a secre", 3),
            b"a secre".to_vec()
        );
        assert_eq!(
            mask_in_chunks(&["secret"], b"secsecret", 1),
            b"sec[MASKED]".to_vec()
        );
    }

    #[test]
    fn masks_repeated_values() {
        assert_eq!(
            mask_in_chunks(&["xy"], b"xyxyxxy", 1),
            b"[MASKED][MASKED]x[MASKED]".to_vec()
        );
    }
}
