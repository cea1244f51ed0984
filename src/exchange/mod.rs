//! The vocabulary the actions and the interpreter share: one request (and, in the response
//! phase, its response) as the actions see it ([`Exchange`]), the [`Phase`] a policy runs in,
//! the [`Step`] an action returns, and the ports ([`Context`]) it may call.

mod ports;
mod step;

pub use crate::http::MAX_BUFFERED_BODY;
pub use ports::{
    Context, Subrequest, SubrequestContext, Subresponse, MAX_SUBREQUEST_BODY, MAX_SUBREQUEST_DEPTH,
};
pub use step::{Phase, Step};

use crate::error::GatewayError;
use crate::expr::{map, EvalError, Expr, Facts, Scope, Template};
use crate::http::{Headers, RequestHead, ResponseHead};
use crate::limiter::{Decision, Limit};
use crate::secrets::Secrets;
use cel::Value;
use std::collections::HashMap;
use std::sync::Arc;

pub struct Exchange {
    pub req: RequestHead,
    /// Present in the response phase: the response being sent back.
    pub res: Option<ResponseHead>,
    /// `actions.ngrok.<action>.*` result variables, last execution wins.
    results: HashMap<&'static str, Value>,
    /// The CEL scope, built on first use and dropped whenever the request or results change.
    scope: Option<Scope>,
    /// Rate limits decided for this request, for the `RateLimit` response headers.
    pub rate_limits: Vec<(String, Limit, Decision)>,
    /// Things the shell should log (a limiter that failed open, ...).
    pub notes: Vec<String>,
    /// What `secrets.get` reads.
    secrets: Arc<Secrets>,
    /// `vars.*` set by `set-vars`: this policy's, this phase's (a new endpoint or phase starts
    /// with none).
    vars: HashMap<String, Value>,
    /// Set when this exchange is an `http-request` subrequest: its body, deadline and depth.
    pub subrequest: Option<SubrequestContext>,
    /// The circuit breakers that let this request through; the gateway reports its outcome.
    pub breakers: Vec<crate::breaker::Admission>,
    /// The request body as `request-body-find-replace` rewrote it: sent instead of the
    /// client's (`None`: the client's, streamed).
    pub req_body: Option<std::rc::Rc<[u8]>>,
    /// The coding `compress-response` chose: the shell compresses the body on the way out.
    pub compress: Option<crate::http::Coding>,
    /// Clock, running endpoint, IP list and `rand.*` stream for the variables.
    pub facts: Facts,
}

impl Exchange {
    pub fn new(req: RequestHead) -> Exchange {
        Exchange {
            req,
            res: None,
            results: HashMap::new(),
            scope: None,
            rate_limits: Vec::new(),
            notes: Vec::new(),
            secrets: Arc::default(),
            vars: HashMap::new(),
            subrequest: None,
            breakers: Vec::new(),
            req_body: None,
            compress: None,
            facts: Facts::default(),
        }
    }

    /// Sets what the variables read beyond the request (see [`Facts`]).
    pub fn with_facts(mut self, facts: Facts) -> Exchange {
        self.facts = facts;
        self.scope = None;
        self
    }

    /// The endpoint whose policy runs next (`endpoint.*`).
    pub fn set_endpoint(&mut self, endpoint: Arc<crate::expr::EndpointInfo>) {
        self.facts.endpoint = Some(endpoint);
        self.scope = None;
    }

    pub fn with_secrets(mut self, secrets: Arc<Secrets>) -> Exchange {
        self.secrets = secrets;
        self.scope = None;
        self
    }

    /// Hands the exchange to the next internal endpoint: its policy starts with fresh result
    /// variables; the request, the rate limits the response must report and the notes stay.
    pub fn enter_endpoint(&mut self) {
        self.results.clear();
        self.vars.clear();
        self.scope = None;
    }

    /// Evaluates an expression to a value (for `bucket_key`).
    pub fn eval(&mut self, expr: &Expr) -> Result<cel::Value, EvalError> {
        expr.eval(self.scope())
    }

    /// Evaluates an expression with extra variables (`http-request`'s `retry_condition` reads
    /// `attempts` and `last_attempt`) in a scope of its own.
    pub fn eval_with(
        &mut self,
        expr: &Expr,
        extra: Vec<(&str, Value)>,
    ) -> Result<Value, EvalError> {
        // A scope of its own, so the extra variables do not outlive this evaluation.
        let scope = self.new_scope();
        for (name, value) in extra {
            scope.add_variable(name, value);
        }
        expr.eval(&scope)
    }

    /// Reports the request's final status to the circuit breakers that admitted it (once each).
    pub fn record_breakers(&mut self, status: u16, now_ms: u64) {
        let admitted = std::mem::take(&mut self.breakers);
        for (i, a) in admitted.iter().enumerate() {
            if !admitted[..i].iter().any(|b| b.same_breaker(a)) {
                a.record(status, now_ms);
            }
        }
    }

    pub fn note(&mut self, line: String) {
        self.notes.push(line);
    }

    pub fn record_rate_limit(&mut self, name: &str, limit: Limit, decision: Decision) {
        self.rate_limits.push((name.to_string(), limit, decision));
    }

    /// Sets `actions.ngrok.<action>.*` (the last execution of an action wins, as in ngrok).
    pub fn set_result(&mut self, action: &'static str, fields: Vec<(&str, Value)>) {
        self.results.insert(action, map(fields));
        // The request did not change: keep the scope (and the request variables it built).
        if self.scope.is_some() {
            let actions = self.results_value();
            if let Some(scope) = &mut self.scope {
                scope.replace_actions(actions);
            }
        }
    }

    /// `actions.ngrok.rate_limit.{bucket_key, limited, error}`.
    pub fn set_rate_limit_result(
        &mut self,
        bucket_key: &str,
        limited: bool,
        error: Option<&GatewayError>,
    ) {
        let mut fields = vec![
            ("bucket_key", Value::from(bucket_key)),
            ("limited", Value::Bool(limited)),
        ];
        if let Some(e) = error {
            fields.push(("error", error_value(e)));
        }
        self.set_result("rate_limit", fields);
    }

    /// Sets `vars.<name>` for the expressions that follow.
    pub fn set_var(&mut self, name: &str, value: Value) {
        self.vars.insert(name.to_string(), value);
        if let Some(scope) = &mut self.scope {
            let vars = self.vars.iter().map(|(k, v)| (k.as_str(), v.clone()));
            scope.replace_vars(map(vars.collect()));
        }
    }

    pub(crate) fn scope(&mut self) -> &Scope {
        if self.scope.is_none() {
            self.scope = Some(self.new_scope());
        }
        self.scope.as_ref().expect("scope was just built")
    }

    /// A scope over the exchange as it is now: request, response, results, facts and vars.
    fn new_scope(&self) -> Scope {
        let actions = (!self.results.is_empty()).then(|| self.results_value());
        let mut scope = Scope::new(
            &self.req,
            self.res.as_ref(),
            actions,
            Arc::clone(&self.secrets),
        )
        .with_facts(&self.facts);
        if !self.vars.is_empty() {
            let vars = self.vars.iter().map(|(k, v)| (k.as_str(), v.clone()));
            scope = scope.with_vars(map(vars.collect()));
        }
        scope
    }

    /// The request as the CEL scope sees it (a snapshot, replaced when the request changes).
    pub(crate) fn request_data(&mut self) -> crate::expr::RequestData {
        Arc::clone(self.scope().request())
    }

    pub fn eval_condition(&mut self, expr: &Expr) -> Result<bool, GatewayError> {
        expr.eval_bool(self.scope())
            .map_err(|error| GatewayError::Expression { error })
    }

    pub fn render(
        &mut self,
        template: &Template,
        action: &'static str,
        field: &'static str,
    ) -> Result<String, GatewayError> {
        if let Some(text) = template.literal() {
            return Ok(text.to_string());
        }
        template
            .render(self.scope())
            .map_err(|error: EvalError| GatewayError::Interpolation {
                action,
                field,
                error,
            })
    }

    /// Replaces the request (`url-rewrite`): later expressions see the new one.
    pub fn set_request(&mut self, req: RequestHead) {
        self.req = req;
        self.scope = None;
    }

    /// The headers an action changes: the response's in the response phase, else the request's.
    pub fn headers_mut(&mut self) -> &mut Headers {
        self.scope = None;
        match &mut self.res {
            Some(res) => &mut res.headers,
            None => &mut self.req.headers,
        }
    }

    /// Sets `actions.ngrok.<action>.*` to `fields`, plus `error.{code,message}` when the action
    /// failed (whether or not it enforces).
    pub fn set_outcome(
        &mut self,
        action: &'static str,
        mut fields: Vec<(&str, Value)>,
        error: Option<&GatewayError>,
    ) {
        if let Some(e) = error {
            fields.push(("error", error_value(e)));
        }
        self.set_result(action, fields);
    }

    /// Records `actions.ngrok.<action>.error.{code,message}` for an error an action swallowed.
    pub fn set_error_result(&mut self, action: &'static str, e: &GatewayError) {
        let mut fields = vec![("error", error_value(e))];
        if let GatewayError::EndpointOffline { url } = e {
            fields.push(("url", Value::from(url.as_str())));
        }
        self.set_result(action, fields);
    }

    /// `forward-internal`'s results after a forward to `url` (`scheme://host:port`) failed.
    pub fn set_forward_failure(&mut self, url: &str, e: &GatewayError) {
        let fields = vec![("error", error_value(e)), ("url", Value::from(url))];
        self.set_result("forward_internal", fields);
    }

    fn results_value(&self) -> Value {
        let ngrok = map(self.results.iter().map(|(k, v)| (*k, v.clone())).collect());
        map(vec![("ngrok", ngrok)])
    }
}

fn error_value(e: &GatewayError) -> Value {
    map(vec![
        ("code", Value::from(e.code().unwrap_or_default())),
        ("message", Value::from(e.to_string())),
    ])
}
