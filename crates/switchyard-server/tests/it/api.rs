//! Catalogue and account APIs.
