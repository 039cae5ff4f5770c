//! Chapter timestamps: `MM:SS` (minutes may exceed 59), `H:MM:SS` and `HH:MM:SS` to seconds and back.

/// Parse a chapter timestamp to seconds; `None` when it is not one of the accepted forms.
pub fn parse_timestamp(s: &str) -> Option<u32> {
    let parts: Vec<&str> = s.trim().split(':').collect();
    let num = |p: &str, max_len: usize| -> Option<u32> {
        if p.is_empty() || p.len() > max_len || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    match parts.as_slice() {
        [m, s] if s.len() == 2 => {
            let (m, s) = (num(m, 4)?, num(s, 2)?);
            (s < 60).then_some(m * 60 + s)
        }
        [h, m, s] if m.len() == 2 && s.len() == 2 => {
            let (h, m, s) = (num(h, 2)?, num(m, 2)?, num(s, 2)?);
            (m < 60 && s < 60).then_some(h * 3600 + m * 60 + s)
        }
        _ => None,
    }
}

/// Display form for a number of seconds: `M:SS` below an hour, `H:MM:SS` above.
pub fn format_timestamp(seconds: u32) -> String {
    let (h, m, s) = (seconds / 3600, (seconds % 3600) / 60, seconds % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}
