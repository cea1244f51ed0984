// Times the WAF in wasm under node's V8 (the engine workerd runs): start-up in a fresh
// instance, then each case of benches/waf_requests.rs. Usage:
//   node run.mjs path/to/waf.wasm path/to/bundle.json
// The bundle is one `policy-check bundle` wrote: its CoreRuleSet document's program is what
// the Worker parses when the bundle loads.
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

const bytes = readFileSync(process.argv[2]);
const bundle = JSON.parse(readFileSync(process.argv[3], "utf8"));
const crs = bundle.documents.find((d) => d.document.kind === "CoreRuleSet");
if (!crs) throw new Error("the bundle carries no CoreRuleSet document");
const program = new TextEncoder().encode(crs.document.spec.program);
console.log(`program: ${program.length} B of JSON in the bundle`);
const module = await WebAssembly.compile(bytes);
// The engine needs no host functions; anything the linker left in is a stub that fails loudly.
const imports = {};
for (const imp of WebAssembly.Module.imports(module)) {
  imports[imp.module] ??= {};
  imports[imp.module][imp.name] = () => {
    throw new Error(`unexpected host call ${imp.module}.${imp.name}`);
  };
}
const fresh = async () => {
  const e = (await WebAssembly.instantiate(module, imports)).exports;
  const ptr = e.waf_program_buffer(program.length);
  new Uint8Array(e.memory.buffer, ptr, program.length).set(program);
  return e;
};
const ms = (f) => {
  const t = performance.now();
  const r = f();
  return [performance.now() - t, r];
};

// Start-up: each in its own new instance, so nothing is warm but V8's compiled code. Lazy is
// what a bundle load pays (parse the program, make the rule set); eager also compiles every
// regex and phrase automaton, which requests otherwise do one by one as prefilters fire.
const lazy = [];
const eager = [];
for (let i = 0; i < 5; i++) {
  const a = await fresh();
  lazy.push(ms(() => a.waf_setup(0))[0]);
  const b = await fresh();
  const [t2, bad] = ms(() => b.waf_setup(1));
  if (bad !== 0) throw new Error(`${bad} rules did not compile`);
  eager.push(t2);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// The first request after a bundle loads (lazy): it builds the shared literal automaton and
// compiles the regexes whose literals its values contain; each case in a fresh instance.
{
  const probe = await fresh();
  const cases = probe.waf_cases();
  for (let c = 0; c < cases; c++) {
    const firsts = [];
    for (let i = 0; i < 3; i++) {
      const f = await fresh();
      const [setup] = ms(() => f.waf_setup(0));
      const [first] = ms(() => f.waf_run(c, 1));
      firsts.push(setup + first);
    }
    const nm = new TextDecoder().decode(new Uint8Array(probe.memory.buffer, probe.waf_name(c), probe.waf_name_len(c)));
    console.log(`first request after the bundle loads, ${nm}: ${median(firsts).toFixed(1)} ms (setup + first inspection, median of 3 fresh instances)`);
  }
}
console.log(
  `start-up (median of 5 fresh instances): parse the program + make the rule set ${median(lazy).toFixed(1)} ms; ` +
    `with every operator compiled ${median(eager).toFixed(1)} ms`,
);

const w = await fresh();
w.waf_setup(1);
const dec = new TextDecoder();
const name = (i) => dec.decode(new Uint8Array(w.memory.buffer, w.waf_name(i), w.waf_name_len(i)));
for (let c = 0; c < w.waf_cases(); c++) {
  w.waf_run(c, 300); // warm: V8 tiers the hot functions up
  const runs = [];
  for (let r = 0; r < 7; r++) {
    const n = 500;
    const [t] = ms(() => w.waf_run(c, n));
    runs.push((t * 1000) / n);
  }
  const denied = w.waf_run(c, 1);
  console.log(`${name(c)}: ${median(runs).toFixed(1)} µs per inspection (median of 7×500; min ${Math.min(...runs).toFixed(1)}) ${denied ? "deny" : "allow"}`);
}
