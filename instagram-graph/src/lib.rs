//! A typed async client for the Instagram Platform, and the typed model of its webhook events.
