//! Deterministic pseudo-random note text and schedule offsets, so runs are repeatable without a
//! random-number crate.

/// Words a coach might write about a child's mathematics.
const WORDS: [&str; 48] = [
    "counted",
    "on",
    "from",
    "seven",
    "by",
    "twos",
    "tens",
    "frame",
    "number",
    "line",
    "the",
    "child",
    "said",
    "eight",
    "and",
    "two",
    "make",
    "ten",
    "so",
    "she",
    "moved",
    "one",
    "bead",
    "across",
    "partner",
    "disagreed",
    "about",
    "whether",
    "fourteen",
    "is",
    "more",
    "than",
    "twelve",
    "drew",
    "a",
    "picture",
    "explained",
    "her",
    "strategy",
    "used",
    "fingers",
    "teacher",
    "asked",
    "why",
    "doubles",
    "plus",
    "half",
    "groups",
];

/// splitmix64: tiny, fast and good enough for text and jitter.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        let n = u64::try_from(n).expect("usize fits in u64");
        usize::try_from(self.next_u64() % n).expect("below n, which is a usize")
    }

    /// A sentence of `min..=max` characters (ASCII, so bytes = characters).
    pub fn note_text(&mut self, min: usize, max: usize) -> String {
        let length = min + self.below(max.saturating_sub(min) + 1);
        let mut text = String::with_capacity(length + 16);
        while text.len() < length {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(WORDS[self.below(WORDS.len())]);
        }
        text.truncate(length);
        if text.ends_with(' ') {
            text.pop();
            text.push('.');
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_text_has_the_asked_length() {
        let mut rng = Rng::new(7);
        for _ in 0..200 {
            let text = rng.note_text(80, 200);
            assert!((80..=200).contains(&text.len()), "{}", text.len());
            assert!(!text.ends_with(' '));
        }
        assert_eq!(Rng::new(1).note_text(5, 5).len(), 5);
    }
}
