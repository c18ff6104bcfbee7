// Draws the cases of view.html from its JSON block. Untrusted text is only ever set with textContent.
"use strict";
const DATA = JSON.parse(document.getElementById("medsyn-data").textContent);

function el(tag, props, children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "text") node.textContent = value;
    else if (key === "className") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children || []) if (child) node.appendChild(child);
  return node;
}

function pct(p) { return p === null || p === undefined ? "n/a" : (100 * p).toFixed(1) + " %"; }

function image(ref) {
  const caption = ref.ce_type + ": " + ref.title;
  const img = el("img", {alt: caption, title: caption});
  img.src = DATA.images[ref.image];
  return el("figure", {}, [img, el("figcaption", {text: caption})]);
}

function prompt(segments) {
  const box = el("div", {className: "prompt"});
  for (const part of segments) box.appendChild(typeof part === "string" ? el("pre", {text: part}) : image(part));
  return el("details", {}, [el("summary", {text: "prompt, exactly as rendered"}), box]);
}

function recorded(sample) {
  const keys = Object.keys(sample.recorded || {});
  if (!keys.length) return null;
  return el("details", {}, [el("summary", {text: "recorded in the details"}),
    el("pre", {text: JSON.stringify(sample.recorded, null, 2)})]);
}

function output(sample) {
  return sample.output === null ? el("p", {text: "no output recorded"}) : el("pre", {className: "output", text: sample.output});
}

function fdx(sample, c) {
  const verdict = sample.extracted === null
    ? "parse failure: " + sample.reason
    : "extracted " + sample.extracted + " (" + sample.outcome + ")";
  return el("div", {className: "sample fdx"}, [
    el("h3", {text: "FDx, condition " + sample.condition}),
    prompt(sample.prompt), el("p", {text: "raw output:"}), output(sample),
    el("p", {}, [el("span", {className: "badge " + sample.outcome, text: verdict}),
                 el("span", {className: "badge", text: "gold " + c.answer})]),
    recorded(sample)]);
}

function ddx(sample, c) {
  const rows = sample.items.map((item, i) => el("tr", {}, [
    el("td", {text: String(i + 1)}), el("td", {text: item}),
    el("td", {text: sample.grades === null ? (sample.judge_message ? "no grade" : "not re-judged") : (sample.grades[i] ?? "no grade")})]));
  const table = el("table", {}, [el("tr", {}, [el("th", {text: "#"}), el("th", {text: "item"}), el("th", {text: "grade 0-5"})]), ...rows]);
  const status = sample.judge_failure
    ? el("span", {className: "badge failure", text: "judge failure" + (sample.judge_message ? ": " + sample.judge_message : "")})
    : el("span", {className: "badge", text: "best grade " + (sample.best_score ?? "n/a")});
  return el("div", {className: "sample ddx"}, [
    el("h3", {text: "DDx (gold: " + c.final_diagnosis + ")"}),
    prompt(sample.prompt), el("p", {text: "raw output:"}), output(sample),
    sample.items.length ? table : el("p", {text: "no list items parsed"}), el("p", {}, [status]), recorded(sample)]);
}

function es(sample, c) {
  const bars = el("table", {className: "bars"});
  if (sample.posterior) sample.posterior.forEach((p, i) => {
    const letter = sample.letters[i];
    const bar = el("div", {className: "bar" + (letter === c.answer ? " gold" : "")});
    bar.style.width = Math.round(200 * p) + "px";
    bars.appendChild(el("tr", {}, [el("td", {text: letter + (letter === c.answer ? " (gold)" : "")}), el("td", {}, [bar]), el("td", {text: pct(p)})]));
  });
  const mass = Object.entries(sample.letter_mass).map(([k, v]) => k + " " + (typeof v === "number" ? v.toPrecision(3) : JSON.stringify(v))).join(", ");
  return el("div", {className: "es-row"}, [
    el("strong", {text: "ES " + sample.condition}),
    sample.failed ? el("span", {className: "badge failure", text: "posterior failed (no option letter): left out of ES"}) : null,
    mass ? el("span", {className: "badge", text: "letter mass: " + mass}) : null,
    sample.posterior ? bars : el("p", {text: "no posterior recorded"}), prompt(sample.prompt), recorded(sample)]);
}

function caseSection(c) {
  const full = c.samples.find(s => s.task === "fdx" && s.condition === "full") || c.samples[0];
  const seen = new Set();
  const gallery = el("div", {className: "gallery"});
  for (const part of full.prompt) {
    if (typeof part !== "string" && !seen.has(part.image)) { seen.add(part.image); gallery.appendChild(image(part)); }
  }
  const options = el("ol", {type: "A"}, c.options.map((o, i) => el("li", {text: o + (String.fromCharCode(65 + i) === c.answer ? "  (gold)" : "")})));
  const section = el("section", {className: "case", "data-case": c.case_id}, [
    el("h2", {}, [document.createTextNode(c.case_id + " · " + c.language + " · " + c.specialty),
      el("span", {className: "badge " + c.outcome, text: "FDx " + c.outcome.replace("_", " ")}),
      c.judge_failure ? el("span", {className: "badge failure", text: "judge failure"}) : null]),
    el("p", {text: "Final diagnosis: " + c.final_diagnosis + " · CE types: " + c.ce_types.join(", ")}),
    options, el("p", {text: "Images as the model saw them (" + seen.size + ", in CE order):"}), gallery]);
  const esBox = el("details", {}, [el("summary", {text: "Evidence Sensitivity: answer posterior of each condition"})]);
  for (const s of c.samples) {
    if (s.task === "fdx") section.appendChild(fdx(s, c));
    else if (s.task === "ddx") section.appendChild(ddx(s, c));
    else esBox.appendChild(es(s, c));
  }
  if (esBox.children.length > 1) { esBox.open = true; section.appendChild(esBox); }
  return section;
}

const FILTERS = [
  ["language", "language", c => [c.language]],
  ["ce_type", "CE type", c => c.ce_types],
  ["specialty", "specialty", c => [c.specialty]],
  ["outcome", "FDx", c => [c.outcome]],
  ["judge", "judge", c => [c.judge_failure ? "judge failure" : "judged"]],
];

function draw() {
  const main = document.getElementById("cases");
  const sections = DATA.cases.map(c => { const s = caseSection(c); main.appendChild(s); return [c, s]; });
  const nav = document.getElementById("filters");
  const shown = el("span", {id: "shown"});
  const selects = FILTERS.map(([id, label, values]) => {
    const all = [...new Set(DATA.cases.flatMap(values))].sort();
    const select = el("select", {id: "filter-" + id}, [el("option", {value: "", text: "all"}), ...all.map(v => el("option", {value: v, text: v}))]);
    nav.appendChild(el("label", {}, [document.createTextNode(label + " "), select]));
    return [select, values];
  });
  nav.appendChild(shown);
  function apply() {
    let n = 0;
    for (const [c, section] of sections) {
      const ok = selects.every(([select, values]) => !select.value || values(c).includes(select.value));
      section.style.display = ok ? "" : "none";
      n += ok;
    }
    shown.textContent = n + " of " + sections.length + " cases shown";
  }
  for (const [select] of selects) select.addEventListener("change", apply);
  apply();
}

draw();
