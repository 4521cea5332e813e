//! Rule tests on fixtures.
