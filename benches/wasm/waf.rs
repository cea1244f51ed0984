//! The WAF's inspections compiled to wasm32 with the Worker's release profile, for
//! `benches/wasm/run.mjs` to time under node's V8 (workerd's engine): inspection cost in wasm and
//! the rule set's start-up in a fresh instance, without workerd's timers (frozen during a
//! request) or HTTP in the way. `scripts/bench-waf-wasm.sh` builds and runs it, handing over
//! the compiled CRS a real bundle carries (the `CoreRuleSet` document's program), as the
//! Worker receives it from KV.
//!
//! Exports plain functions over integers; no JS glue.

#![expect(
    unsafe_code,
    reason = "#[no_mangle] exports are what the node harness calls"
)]

#[path = "../waf_requests.rs"]
mod waf_requests;

use edge_gateway::waf::program::Program;
use edge_gateway::waf::{Budget, CrsRules, Profile, RuleSet};
use std::cell::RefCell;
use std::sync::Arc;
use waf_requests::{cases, form_4k, html_4k, json_1k, Case};

struct Inputs {
    json: String,
    json_len: String,
    form: String,
    form_len: String,
    html: String,
}

thread_local! {
    static RULES: RefCell<Option<CrsRules>> = const { RefCell::new(None) };
    static PROGRAM: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static INPUTS: &'static Inputs = Box::leak(Box::new({
        let (json, form) = (json_1k(), form_4k());
        Inputs { json_len: json.len().to_string(), form_len: form.len().to_string(), json, form, html: html_4k() }
    }));
}

/// Space for the program's JSON text (`len` bytes): the harness writes it there.
#[no_mangle]
pub extern "C" fn waf_program_buffer(len: u32) -> *mut u8 {
    PROGRAM.with(|p| {
        let mut p = p.borrow_mut();
        *p = vec![0; len as usize];
        p.as_mut_ptr()
    })
}

/// What the Worker does when a bundle loads: parse the program and make the rule set, then
/// apply ngrok's settings with bodies inspected; `eager` compiles every operator too. Returns
/// how many rules did not compile (0), or `u32::MAX` when the program does not parse.
#[no_mangle]
pub extern "C" fn waf_setup(eager: u32) -> u32 {
    let Some(program) = PROGRAM.with(|p| serde_json::from_slice::<Program>(&p.borrow()).ok())
    else {
        return u32::MAX;
    };
    let set = Arc::new(RuleSet::new(program));
    let bad = if eager == 1 {
        set.compile_all().len()
    } else {
        0
    };
    let rs = CrsRules::new(
        set,
        &Profile {
            process_body: true,
            ..Profile::default()
        },
    );
    RULES.with(|r| *r.borrow_mut() = Some(rs));
    bad as u32
}

/// How many cases there are.
#[no_mangle]
pub extern "C" fn waf_cases() -> u32 {
    with_cases(|c| c.len()) as u32
}

/// Runs case `case` `n` times; returns how many inspections denied.
#[no_mangle]
pub extern "C" fn waf_run(case: u32, n: u32) -> u32 {
    RULES.with(|r| {
        let r = r.borrow();
        let Some(rs) = r.as_ref() else {
            return u32::MAX;
        };
        with_cases(|cases| {
            let Some((_, case)) = cases.get(case as usize) else {
                return u32::MAX;
            };
            let mut denied = 0;
            for _ in 0..n {
                let deny = match case {
                    Case::Request(req) => rs.inspect_request(req, &mut Budget::unlimited()),
                    Case::Response(res) => rs.inspect_response(res, &mut Budget::unlimited()),
                }
                .is_deny();
                denied += deny as u32;
            }
            denied
        })
    })
}

/// Writes case `case`'s name to memory at the returned pointer; its length is `waf_name_len`.
#[no_mangle]
pub extern "C" fn waf_name(case: u32) -> *const u8 {
    with_cases(|c| {
        c.get(case as usize)
            .map_or(std::ptr::null(), |c| c.0.as_ptr())
    })
}

#[no_mangle]
pub extern "C" fn waf_name_len(case: u32) -> u32 {
    with_cases(|c| c.get(case as usize).map_or(0, |c| c.0.len())) as u32
}

fn with_cases<T>(f: impl FnOnce(&[(&'static str, Case<'static>)]) -> T) -> T {
    INPUTS.with(|i| {
        let i: &'static Inputs = i;
        f(&cases(&i.json, &i.json_len, &i.form, &i.form_len, &i.html))
    })
}
