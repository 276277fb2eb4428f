//! openb CSV loader (stub).
