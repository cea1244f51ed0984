//! The actions of a Traffic Policy, one file per action `type`. Each declares itself once
//! ([`ActionType`]: name, phases, whether it terminates, result variables, config shape, compile
//! and apply); the one registration line per action in [`actions!`] below derives the enum, its
//! dispatch and the table [`ACTIONS`] the validator and the CEL schema read.

pub mod config;
mod not_implemented;
mod owasp_crs;
pub mod spec;
#[cfg(test)]
pub(crate) mod testing;

pub use compress_response::negotiate;
pub use not_implemented::NotImplemented;
pub use rate_limit::{bucket_name, parse_duration_ms};
pub use spec::{ActionSpec, ActionType, ConfigShape, Cx};

use crate::error::GatewayError;
use crate::exchange::{Context, Exchange, Step};
use crate::source::{At, Node};

/// The type of a compiled action as the enum holds it: the action, or a box around a large one
/// (so that every rule's list of actions stays small).
macro_rules! slot {
    ($ty:ident) => { $ty };
    ($ty:ident, boxed) => { Box<$ty> };
}

/// Registers the action types: `module::Type` (its file and the type implementing
/// [`ActionType`]; `(boxed)` for a large one; attributes such as `#[cfg(test)]` apply to the
/// whole entry), then the types ngrok documents that this gateway does not run yet.
macro_rules! actions {
    (
        run: [$($(#[$attr:meta])* $module:ident :: $ty:ident $(($boxed:ident))?,)*]
        later: [$($later:ident,)*]
    ) => {
        $($(#[$attr])* mod $module; $(#[$attr])* pub use $module::$ty;)*

        /// A compiled action.
        #[derive(Debug)]
        pub enum Action {
            $($(#[$attr])* $ty(slot!($ty $(, $boxed)?)),)*
            /// A documented action type that fails closed when a request reaches it.
            NotImplemented(NotImplemented),
        }

        /// Every action type ngrok documents, in the order hints list them.
        pub const ACTIONS: &[&ActionSpec] = &[
            $($(#[$attr])* &<$ty as ActionType>::SPEC,)*
            $(&not_implemented::$later,)*
        ];

        impl Action {
            /// Compiles one action of `type_name` (its phase was checked against its
            /// [`ActionSpec`] by the validator); `None` when it was rejected (diagnostics say
            /// why).
            pub fn compile(
                type_name: &str,
                config: Option<&Node>,
                path: &str,
                type_node: &Node,
                cx: &mut Cx<'_>,
            ) -> Option<Action> {
                let config_path = crate::source::child(path, "config");
                $($(#[$attr])* if type_name == <$ty as ActionType>::SPEC.name {
                    return <$ty>::compile(config, config_path, cx).map(|a| Action::$ty(a.into()));
                })*
                if [$(not_implemented::$later.name,)*].contains(&type_name) {
                    return Some(Action::NotImplemented(NotImplemented::compile(
                        type_name, path, type_node, cx,
                    )));
                }
                cx.diags.error(
                    Some("ERR_NGROK_2201"),
                    At::new(path, type_node),
                    format!("invalid action type `{type_name}`"),
                );
                None
            }

            /// Whether the chain always stops after this action (ngrok's "terminating" actions).
            pub fn terminates(&self) -> bool {
                match self {
                    $($(#[$attr])* Action::$ty(a) => a.terminates(),)*
                    Action::NotImplemented(_) => false,
                }
            }

            /// Tells the action the name of its rule (`log` writes it).
            pub fn set_rule_name(&mut self, name: Option<&str>) {
                match self {
                    $($(#[$attr])* Action::$ty(a) => a.set_rule_name(name),)*
                    Action::NotImplemented(_) => {}
                }
            }

            pub async fn apply<C: Context>(
                &self,
                ex: &mut Exchange,
                cx: &C,
            ) -> Result<Step, GatewayError> {
                match self {
                    $($(#[$attr])* Action::$ty(a) => a.apply(ex, cx).await,)*
                    Action::NotImplemented(a) => Err(a.apply()),
                }
            }
        }
    };
}

actions! {
    run: [
        forward_internal::ForwardInternal,
        custom_response::CustomResponse,
        deny::Deny,
        close_connection::CloseConnection,
        redirect::Redirect(boxed),
        url_rewrite::UrlRewrite,
        add_headers::AddHeaders,
        remove_headers::RemoveHeaders,
        set_vars::SetVars,
        log::Log(boxed),
        restrict_ips::RestrictIps(boxed),
        basic_auth::BasicAuth,
        rate_limit::RateLimit,
        jwt_validation::JwtValidation(boxed),
        verify_webhook::VerifyWebhook(boxed),
        owasp_crs_request::OwaspCrsRequest(boxed),
        owasp_crs_response::OwaspCrsResponse(boxed),
        compress_response::CompressResponse,
        circuit_breaker::CircuitBreaker,
        http_request::HttpRequest(boxed),
        request_body_find_replace::RequestBodyFindReplace,
        response_body_find_replace::ResponseBodyFindReplace,
        // A made-up action for unit tests (see its file): one line registers an action.
        #[cfg(test)]
        stamp::Stamp,
    ]
    later: [OAUTH, OIDC, OPENID_CONNECT, TERMINATE_TLS, SSE_FIND_REPLACE, SAML, AI_GATEWAY,]
}
