//! HTML fragments (show notes, transcript lines) as plain text.
//!
//! Owns one narrow job: tags out, entities decoded, block elements as line breaks, so that show
//! notes keep their `12:34 Topic` lines. It is not an HTML parser: podcast show notes are short
//! fragments, and what it must never do is let markup or script through as text. It does no IO.

use std::sync::LazyLock;

use regex::Regex;

/// The text of an HTML fragment: block tags become line breaks, other tags vanish, entities are
/// decoded, runs of spaces collapse, and `<script>`/`<style>` content is dropped.
pub fn to_text(html: &str) -> String {
    if !html.contains(['<', '&']) {
        return collapse(html);
    }
    let dropped = SCRIPT_OR_STYLE.replace_all(html, " ");
    let broken = BLOCK_TAG.replace_all(&dropped, "\n");
    let stripped = ANY_TAG.replace_all(&broken, "");
    collapse(&decode_entities(&stripped))
}

/// Spaces collapsed within lines; blank lines removed; lines kept.
fn collapse(text: &str) -> String {
    text.lines()
        .map(super::collapse_spaces)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Numeric entities and the named ones show notes use; an unknown name is left as written.
pub fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        // Bytes, not a str slice: the 12th byte may fall inside a multi-byte character.
        let Some(semi) = rest.bytes().take(12).position(|b| b == b';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        match entity(&rest[1..semi]) {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(code).filter(|c| *c != '\0');
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "rsquo" => '’',
        "lsquo" => '‘',
        "rdquo" => '”',
        "ldquo" => '“',
        "aacute" => 'á',
        "eacute" => 'é',
        "iacute" => 'í',
        "oacute" => 'ó',
        "uacute" => 'ú',
        "ntilde" => 'ñ',
        "Ntilde" => 'Ñ',
        "uuml" => 'ü',
        "iquest" => '¿',
        "iexcl" => '¡',
        "copy" => '©',
        _ => return None,
    })
}

static SCRIPT_OR_STYLE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?is)<(script|style)\b.*?</(script|style)\s*>").unwrap());
static BLOCK_TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)<\s*/?\s*(br|p|div|li|ul|ol|h[1-6]|tr|blockquote)\b[^>]*>").unwrap()
});
static ANY_TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?s)<[^>]*>").unwrap());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_notes_keep_lines() {
        let html = "<p>Intro &amp; news</p><ul><li>00:00 Hola</li><li>12:34 Adi&oacute;s&#8230;</li></ul><script>alert(1)</script>";
        assert_eq!(to_text(html), "Intro & news\n00:00 Hola\n12:34 Adiós…");
    }

    #[test]
    fn unknown_entities_and_bare_ampersands_stay() {
        assert_eq!(decode_entities("R&D &bogus; &#x41;"), "R&D &bogus; A");
    }
}
