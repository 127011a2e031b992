//! The backend conformance suite, on a fresh schema of the test cluster per check.

eventsource::conformance_tests!(eventsource_postgres::testing::fresh_store().await);
