//! Every compile error the derives emit, one case per error in `tests/ui/`, with the expected
//! compiler output beside it. Regenerate with `TRYBUILD=overwrite cargo test -p
//! annals-derive --test ui` and review the diff: each error must point at the offending
//! token, with no follow-on errors.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
