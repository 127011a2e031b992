//! The backend conformance suite, on a fresh schema of the test cluster per check.

annals::conformance_tests!(annals_postgres::testing::fresh_store().await);
