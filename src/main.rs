//! The picolet binary: everything lives in the library (src/lib.rs).

fn main() {
    picolet::main()
}
