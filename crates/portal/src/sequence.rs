//! Sequence diagrams as SVG, drawn in Rust: the messages of a run between the user (or any
//! client), the tenant, the relay, the engine and the AD DS, read from a redacted transcript
//! (`→`/`←` for what the client sent and got, `⇢ from → to: text` for what went on behind the
//! tenant). The HTML run report and the dashboard draw them.

/// The lifelines, left to right.
pub const PARTIES: [&str; 5] = ["user", "tenant", "relay", "engine", "AD DS"];
const TITLES: [&str; 5] = ["User / client", "Tenant (Entra ID)", "Relay", "Writeback engine", "AD DS"];

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// A scenario step's header (`#3 sspr.reset`).
    Step(String),
    Message {
        from: usize,
        to: usize,
        text: String,
    },
    /// Something with no wire (the lab clock moved).
    Note(String),
}

fn party(name: &str) -> Option<usize> {
    PARTIES.iter().position(|p| p.eq_ignore_ascii_case(name.trim()))
}

/// The items of a rendered transcript (see `scenario::transcript`).
pub fn from_transcript(text: &str) -> Vec<Item> {
    let mut out = vec![];
    // who the last request went to: its answer comes back from there
    let mut last_to = 1;
    // an answer to a note (the clock moved: what the schedule then ran) is a note too
    let mut after_note = false;
    for line in text.lines() {
        if let Some(h) = line.strip_prefix('#') {
            out.push(Item::Step(format!("#{h}")));
        } else if let Some(r) = line.trim_start().strip_prefix("→ ") {
            let http = ["GET /", "POST /", "PATCH /", "DELETE /", "PUT /"].iter().any(|m| r.starts_with(m));
            after_note = r.starts_with("advance the lab clock");
            if after_note {
                out.push(Item::Note(r.to_string()));
                continue;
            }
            last_to = if http { 1 } else { 4 };
            out.push(Item::Message { from: 0, to: last_to, text: r.to_string() });
        } else if let Some(r) = line.trim_start().strip_prefix("← ") {
            if after_note {
                out.push(Item::Note(r.to_string()));
                continue;
            }
            out.push(Item::Message { from: last_to, to: 0, text: r.to_string() });
        } else if let Some(r) = line.trim_start().strip_prefix("⇢ ") {
            let Some((route, text)) = r.split_once(": ") else { continue };
            let Some((from, to)) = route.split_once(" → ") else { continue };
            if let (Some(from), Some(to)) = (party(from), party(to)) {
                out.push(Item::Message { from, to, text: text.to_string() });
            }
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_string() } else { format!("{}…", s.chars().take(max.saturating_sub(1)).collect::<String>()) }
}

const COLUMN: usize = 220;
const LEFT: usize = 110;
const ROW: usize = 30;
const TOP: usize = 60;

/// The diagram of `items` as one `<svg>` element (no external references: it can sit in a
/// self-contained HTML file). Long labels are cut, with the whole text in a tooltip.
pub fn svg(items: &[Item]) -> String {
    let width = LEFT * 2 + COLUMN * (PARTIES.len() - 1);
    let height = TOP + ROW * items.len() + 30;
    let x = |i: usize| LEFT + i * COLUMN;
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="sequence" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="Segoe UI, system-ui, sans-serif" font-size="12">"##
    );
    s.push_str("<title>Sequence of the messages between the user, the tenant, the relay, the engine and the AD DS</title>");
    s.push_str(r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#1b1b1b"/></marker></defs>"##);
    for (i, title) in TITLES.iter().enumerate() {
        s.push_str(&format!(
            r##"<rect x="{}" y="10" width="160" height="30" rx="4" fill="#deecf9" stroke="#0058a3"/><text x="{}" y="30" text-anchor="middle" font-weight="600">{}</text><line x1="{}" y1="40" x2="{}" y2="{}" stroke="#8a8886" stroke-dasharray="4 4"/>"##,
            x(i) - 80,
            x(i),
            escape(title),
            x(i),
            x(i),
            height - 10
        ));
    }
    for (row, item) in items.iter().enumerate() {
        let y = TOP + row * ROW;
        match item {
            Item::Step(h) => s.push_str(&format!(
                r##"<rect x="4" y="{}" width="{}" height="20" fill="#f3f2f1"/><text x="8" y="{}" font-weight="600">{}</text>"##,
                y - 4,
                width - 8,
                y + 11,
                escape(&cut(h, 80))
            )),
            Item::Note(n) => s.push_str(&format!(
                r##"<text x="{}" y="{}" text-anchor="middle" font-style="italic" fill="#4a4a4a">{}</text>"##,
                width / 2,
                y + 11,
                escape(&cut(n, 80))
            )),
            Item::Message { from, to, text } => {
                let (x1, x2) = (x(*from), x(*to));
                let span = x1.abs_diff(x2).max(COLUMN);
                let label = cut(text, span * 10 / 62);
                let back = to < from;
                let color = if back { "#4a4a4a" } else { "#1b1b1b" };
                let dash = if back { r#" stroke-dasharray="6 3""# } else { "" };
                s.push_str(&format!(
                    r##"<g><title>{}</title><text x="{}" y="{}" text-anchor="middle" fill="{color}">{}</text><line x1="{x1}" y1="{}" x2="{x2}" y2="{}" stroke="{color}"{dash} marker-end="url(#arrow)"/></g>"##,
                    escape(text),
                    (x1 + x2) / 2,
                    y + 8,
                    escape(&label),
                    y + 14,
                    y + 14
                ));
            }
        }
    }
    s.push_str("</svg>");
    s
}

/// The items of one writeback operation from the engine's wire trace (`/lab/engine/trace`):
/// the lines of the last tracking id.
/// The engine's trace begins at the tenant: the user's request opens the diagram and the
/// answer the user got closes it, so the "User / client" lifeline has its arrows too.
pub fn last_operation(trace: &[serde_json::Value]) -> Vec<Item> {
    let Some(last) = trace.last().and_then(|l| l["trackingId"].as_str()) else { return vec![] };
    let mut items: Vec<Item> = trace
        .iter()
        .filter(|l| l["trackingId"].as_str() == Some(last))
        .filter_map(|l| {
            let from = party(l["from"].as_str()?)?;
            let to = party(l["to"].as_str()?)?;
            Some(Item::Message { from, to, text: l["text"].as_str().unwrap_or_default().to_string() })
        })
        .collect();
    let asked = match items.first() {
        Some(Item::Message { text, .. }) => text.split(" (").next().unwrap_or(text).to_string(),
        _ => return items,
    };
    let answer = match items.last() {
        Some(Item::Message { to: 1, text, .. }) => text.clone(),
        _ => "no answer yet".to_string(),
    };
    items.insert(0, Item::Message { from: 0, to: 1, text: asked });
    items.push(Item::Message { from: 1, to: 0, text: answer });
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRANSCRIPT: &str = "#5 sspr.reset\n  → POST /lab/sspr/flows/f/reset {\"newPassword\":\"***\"}\n  ⇢ tenant → relay: reset request for user1@testlab.example\n  ⇢ relay → engine: reset request\n  ⇢ engine → AD DS: modify CN=User1: replace unicodePwd=***\n  ⇢ AD DS → engine: success (0)\n  ← 200 {\"result\":\"succeeded\"}\n#6 ldap.bind\n  → LDAPS bind TESTLAB\\User1 ***\n  ← success (0)\n#7 clock.advance\n  → advance the lab clock by 1d\n  ← scheduled sync: 0 added\n";

    #[test]
    fn the_last_operation_starts_and_ends_with_the_user() {
        let line = |from: &str, to: &str, text: &str| serde_json::json!({ "trackingId": "t1", "from": from, "to": to, "text": text });
        let trace = vec![
            line("tenant", "relay", "reset request for user1@testlab.example (password sealed: RSA-OAEP-wrapped AES-256-GCM)"),
            line("relay", "engine", "reset request for user1@testlab.example"),
            line("engine", "AD DS", "modify CN=User1: replace unicodePwd=***"),
            line("AD DS", "engine", "success (0)"),
            line("engine", "relay", "succeeded"),
            line("relay", "tenant", "succeeded"),
        ];
        let items = last_operation(&trace);
        assert_eq!(items.first(), Some(&Item::Message { from: 0, to: 1, text: "reset request for user1@testlab.example".into() }));
        assert_eq!(items.last(), Some(&Item::Message { from: 1, to: 0, text: "succeeded".into() }));
        assert_eq!(items.len(), 8);
    }

    #[test]
    fn a_transcript_becomes_messages_between_the_right_parties() {
        let items = from_transcript(TRANSCRIPT);
        let msg = |from, to, text: &str| Item::Message { from, to, text: text.into() };
        assert_eq!(
            items,
            vec![
                Item::Step("#5 sspr.reset".into()),
                msg(0, 1, "POST /lab/sspr/flows/f/reset {\"newPassword\":\"***\"}"),
                msg(1, 2, "reset request for user1@testlab.example"),
                msg(2, 3, "reset request"),
                msg(3, 4, "modify CN=User1: replace unicodePwd=***"),
                msg(4, 3, "success (0)"),
                msg(1, 0, "200 {\"result\":\"succeeded\"}"),
                Item::Step("#6 ldap.bind".into()),
                msg(0, 4, "LDAPS bind TESTLAB\\User1 ***"),
                msg(4, 0, "success (0)"),
                Item::Step("#7 clock.advance".into()),
                Item::Note("advance the lab clock by 1d".into()),
                Item::Note("scheduled sync: 0 added".into()),
            ]
        );
    }

    #[test]
    fn the_svg_has_a_lifeline_per_party_an_arrow_per_message_and_escapes_text() {
        let items = from_transcript(TRANSCRIPT);
        let svg = svg(&items);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("stroke-dasharray=\"4 4\"").count(), PARTIES.len(), "lifelines");
        assert_eq!(svg.matches("marker-end=").count(), 8, "one arrow per message");
        assert!(svg.contains("{&quot;newPassword&quot;:&quot;***&quot;}"), "escaped");
        assert!(!svg.contains("<title>POST /lab/sspr/flows/f/reset {\"newPassword\""), "no raw quotes in markup");
    }
}
