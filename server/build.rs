//! Embeds `../migrations/{sqlite,postgres}/*.sql` into the binary, in version order.
use std::fmt::Write;

fn main() {
    let mut out = String::new();
    for backend in ["sqlite", "postgres"] {
        // Read at run time: a build script binary built for one checkout may be reused for
        // another (same sources elsewhere), and must read that checkout's migrations.
        let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
        let dir = format!("{manifest_dir}/../migrations/{backend}");
        println!("cargo:rerun-if-changed={dir}");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("migrations dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect();
        files.sort();
        writeln!(
            out,
            "pub const {}: &[Migration] = &[",
            backend.to_uppercase()
        )
        .unwrap();
        let mut seen = std::collections::HashSet::new();
        for path in files {
            let stem = path.file_stem().unwrap().to_string_lossy().to_string();
            let (version, name) = stem.split_once('_').expect("NNNN_name.sql");
            let version: i64 = version.parse().expect("numeric migration version");
            assert!(
                seen.insert(version),
                "two {backend} migrations have version {version}"
            );
            writeln!(
                out,
                "    Migration {{ version: {version}, name: {name:?}, sql: include_str!({:?}) }},",
                path.display().to_string()
            )
            .unwrap();
        }
        writeln!(out, "];").unwrap();
    }
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("migrations.rs");
    std::fs::write(dest, out).unwrap();
}
