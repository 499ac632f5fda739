//! chat-service: API configs, personas, sessions and messages, and the generations that
//! answer them (being built: so far the schema, the key cipher, context budgeting, input
//! validation and page tokens).

pub mod context_budget;
pub mod key_cipher;
pub mod page_token;
pub mod validation;
