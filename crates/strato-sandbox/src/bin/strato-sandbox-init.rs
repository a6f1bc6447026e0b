//! The sandbox init as a standalone executable, for this crate's integration tests.

fn main() {
    strato_sandbox::sandbox_init_main()
}
