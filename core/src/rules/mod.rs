//! EventBridge rules: the pattern matcher and the rule set read from the SAM template, which is the
//! single source of truth for routing (the same rules route live events in AWS and replays here).

pub mod pattern;
pub mod template;

pub use pattern::{Pattern, PatternError};
pub use template::{FunctionDef, Rule, RuleSet, StreamContent, StreamSource, TemplateError};
