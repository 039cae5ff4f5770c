use std::process::ExitCode;
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut code = ExitCode::SUCCESS;
    for f in &args {
        let bytes = std::fs::read(f).unwrap();
        let p = podseek::corpus::parse_file(f, &bytes);
        for d in &p.diagnostics { eprintln!("{d}"); }
        if std::env::var("JSON").is_ok() { println!("{}", serde_json::to_string_pretty(&p.episodes).unwrap()); continue; }
        println!("{} episodes, {} chapters", p.episodes.len(), p.chapter_count());
        for e in &p.episodes { println!("# {} [{}] {} ch, {} ent", e.title, e.lang.code(), e.chapters.len(), e.entities.len());
          for c in &e.chapters { println!("  [{}] {} || {}", c.timestamp, c.title, c.summary.chars().take(40).collect::<String>()); } }
        if p.skipped_anything() { code = ExitCode::from(2); }
    }
    code
}
