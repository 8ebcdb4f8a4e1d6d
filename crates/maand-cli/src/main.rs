//! The `maand` binary: argument parsing, output (tables, --json), exit codes.

fn main() {
    println!("maand");
}
