// The flag form: variants, rules and rollout as fields; the API's 400 details shown next to the field they name.
//
// The form edits a draft (plain data); typing updates the draft, and structural changes (add, remove,
// move) render the form again from it. Every field's wrapper carries `data-field` with the path the
// API uses in its details (`rules.0.conditions.1`, `rollout.0.weight`, `variants.on`), so an error
// lands on the deepest field its path names, and on the form itself when it names none.

import { fill, h, uid } from "./dom.js";
import {
  LIST_OPERATORS, OPERATORS, TYPES, flagType, operand, operandText, variantText, variantValue,
} from "./values.js";

const FIELDS = ["key", "description", "enabled", "variants", "defaultVariant", "offVariant", "rules", "rollout"];
const DETAIL = new RegExp(`^((?:${FIELDS.join("|")})(?:\\.[^:]*)?): (.*)$`, "s");
const WHOLE_NUMBER = /^-?\d+$/;
const DEFAULT_VALUES = { boolean: ["true", "false"], string: ["a", "b"], integer: ["1", "0"], float: ["1.0", "0.0"], object: ["{}", "{}"] };

export function newDraft() {
  return {
    isNew: true, key: "", enabled: false, description: "", type: "boolean",
    variants: [{ name: "on", text: "true" }, { name: "off", text: "false" }],
    defaultVariant: "on", offVariant: "off", rules: [], split: false, rollout: [],
  };
}

const entriesOf = (rollout) => (rollout || []).map((entry) => ({ variant: entry.variant, weight: String(entry.weight) }));

export function draftOf(flag) {
  const type = flagType(flag.variants);
  return {
    isNew: false, key: flag.key, enabled: flag.enabled, description: flag.description, type,
    variants: Object.entries(flag.variants).map(([name, value]) => ({ name, text: variantText(value, type) })),
    defaultVariant: flag.defaultVariant, offVariant: flag.offVariant,
    rules: flag.rules.map((rule) => ({
      name: rule.name ?? "",
      conditions: rule.conditions.map((c) => ({ attribute: c.attribute, operator: c.operator, text: operandText(c) })),
      serve: rule.rollout ? "split" : "variant",
      variant: rule.variant ?? flag.defaultVariant,
      rollout: entriesOf(rule.rollout),
    })),
    split: flag.rollout.length > 0,
    rollout: entriesOf(flag.rollout),
  };
}

function rolloutOf(entries) {
  // A weight that is not a whole number goes as typed: the API names the field and says what it takes.
  return entries.map((entry) => ({
    variant: entry.variant,
    weight: WHOLE_NUMBER.test(entry.weight.trim()) ? Number(entry.weight.trim()) : entry.weight,
  }));
}

function ruleOf(rule, index, problems) {
  const out = rule.name.trim() ? { name: rule.name.trim() } : {};
  out.conditions = rule.conditions.map((condition, position) => {
    const base = { attribute: condition.attribute, operator: condition.operator };
    try {
      return { ...base, ...operand(condition.operator, condition.text) };
    } catch (error) {
      problems.push({ path: `rules.${index}.conditions.${position}.value`, message: error.message });
      return base;
    }
  });
  if (rule.serve === "split") out.rollout = rolloutOf(rule.rollout);
  else out.variant = rule.variant;
  return out;
}

/** The request body the draft stands for, and the problems found before sending (values that cannot be typed). */
export function definitionOf(draft) {
  const problems = [];
  const variants = {};
  const seen = new Set();
  for (const variant of draft.variants) {
    const path = `variants.${variant.name}`;
    if (variant.name === "") problems.push({ path: "variants", message: "every variant needs a name" });
    else if (seen.has(variant.name)) problems.push({ path, message: "two variants have this name" });
    seen.add(variant.name);
    try {
      variants[variant.name] = variantValue(variant.text, draft.type);
    } catch (error) {
      problems.push({ path, message: error.message });
    }
  }
  const body = {
    description: draft.description, variants, defaultVariant: draft.defaultVariant, offVariant: draft.offVariant,
    rules: draft.rules.map((rule, index) => ruleOf(rule, index, problems)),
    rollout: draft.split ? rolloutOf(draft.rollout) : [],
  };
  return { body: draft.isNew ? { key: draft.key.trim(), enabled: draft.enabled, ...body } : body, problems };
}

/** The API's 400 as problems: `errorDetails` is `path: message; path: message` where a path is known. */
export function problemsOf(error, draft) {
  if (error.code === "INVALID_KEY") return [{ path: "key", message: error.details }];
  return error.details.split("; ").map((part) => {
    const match = DETAIL.exec(part);
    const message = (match ? match[2] : part).replace(/^Value error, /, "");
    return { path: match ? match[1] : guessPath(message, draft), message };
  });
}

/** Whole-definition checks name no field; their wording says which part of the form they are about. */
function guessPath(message, draft) {
  if (/rollout weights/.test(message)) return draft.split ? "rollout" : "rules";
  if (/variant/i.test(message)) return "variants";
  return "";
}

const nameList = (draft) => [...new Set(draft.variants.map((variant) => variant.name).filter(Boolean))];

export class FlagEditor {
  /** onSave(editor) sends the draft; onChange() reports the first edit (the page then keeps newer versions aside). */
  constructor({ draft, onSave, onChange }) {
    this.draft = draft;
    this.onSave = onSave;
    this.onChange = onChange || (() => {});
    this.dirty = false;
    this.element = h("form", { class: "editor", novalidate: true, dataset: { editor: draft.isNew ? "new" : draft.key } });
    this.element.addEventListener("submit", (event) => {
      event.preventDefault();
      this.onSave(this);
    });
    this.render();
  }

  edited() {
    if (!this.dirty) this.onChange();
    this.dirty = true;
  }

  /** Rebuild the form from the draft; `focusPath` names the field to focus afterwards. */
  render(focusPath) {
    const draft = this.draft;
    fill(this.element,
      h("div", { class: "form-errors", dataset: { field: "" } }, h("p", { class: "error", role: "alert", dataset: { error: "" }, hidden: true })),
      draft.isNew ? this.keyFields() : null,
      this.field("description", "Description", this.text(draft.description, (v) => (draft.description = v))),
      this.variantSection(),
      this.ruleSection(),
      this.rolloutSection(),
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary", dataset: { action: "save" } }, draft.isNew ? "Create flag" : "Save changes"),
      ),
    );
    if (focusPath !== undefined) this.wrapperFor(focusPath).querySelector("input, select, textarea, button")?.focus();
  }

  change(mutate, focusPath) {
    mutate();
    this.edited();
    this.render(focusPath);
  }

  keyFields() {
    const draft = this.draft;
    const enabled = h("input", { type: "checkbox", checked: draft.enabled, onchange: (e) => { draft.enabled = e.target.checked; this.edited(); } });
    return [
      this.field("key", "Key", this.text(draft.key, (v) => (draft.key = v), { required: true, autocomplete: "off", spellcheck: "false" }),
        "1 to 128 of A–Z a–z 0–9 . _ - starting with a letter or digit"),
      h("div", { class: "field check", dataset: { field: "enabled" } }, h("label", {}, enabled, " Enabled from the start"), this.errorSlot()),
    ];
  }

  variantSection() {
    const draft = this.draft;
    const typeSelect = this.select(TYPES, draft.type, (v) => this.change(() => {
      draft.type = v;
      draft.variants.forEach((variant, i) => (variant.text = DEFAULT_VALUES[v][i] ?? DEFAULT_VALUES[v][1]));
    }));
    const rows = draft.variants.map((variant, index) => this.variantRow(variant, index));
    const add = h("button", { type: "button", dataset: { action: "add-variant" }, onclick: () => this.change(() => {
      draft.variants.push({ name: `variant-${draft.variants.length + 1}`, text: DEFAULT_VALUES[draft.type][1] });
    }, `variants.variant-${draft.variants.length + 1}`) }, "Add variant");
    const names = nameList(draft);
    return this.group("variants", "Variants",
      this.field("type", "Value type", typeSelect),
      h("p", { class: "hint" }, "Each variant: its name, then its value."),
      h("div", { class: "rows" }, rows), add,
      h("div", { class: "pair" },
        this.field("defaultVariant", "Served when on (default)", this.variantSelect(names, () => draft.defaultVariant, (v) => (draft.defaultVariant = v))),
        this.field("offVariant", "Served when off", this.variantSelect(names, () => draft.offVariant, (v) => (draft.offVariant = v))),
      ),
    );
  }

  variantRow(variant, index) {
    const draft = this.draft;
    const row = h("div", { class: "row variant", dataset: { field: `variants.${variant.name}` } });
    let before = variant.name;
    const rename = () => {
      if (variant.name !== before && !draft.variants.some((other) => other !== variant && other.name === before)) {
        this.replaceVariant(before, variant.name);
      }
      before = variant.name;
      this.refreshVariantSelects();
    };
    const name = this.text(variant.name, (v) => {
      variant.name = v;
      row.dataset.field = `variants.${v}`;
    }, { "aria-label": `Variant ${index + 1} name`, onchange: rename });
    const value = draft.type === "boolean"
      ? this.select(["true", "false"], variant.text, (v) => (variant.text = v), { "aria-label": `Variant ${index + 1} value` })
      : draft.type === "object"
        ? h("textarea", { rows: Math.min(8, variant.text.split("\n").length), "aria-label": `Variant ${index + 1} value`, oninput: (e) => { variant.text = e.target.value; this.edited(); } }, variant.text)
        : this.text(variant.text, (v) => (variant.text = v), { "aria-label": `Variant ${index + 1} value`, inputmode: draft.type === "string" ? "text" : "decimal" });
    const remove = this.removeButton(`Remove variant ${index + 1}`, () => draft.variants.splice(index, 1), "type");
    row.append(name, value, remove, this.errorSlot());
    return row;
  }

  /** Variant choices follow renames without rebuilding the form (focus stays where the person is). */
  refreshVariantSelects() {
    const names = nameList(this.draft);
    for (const select of this.element.querySelectorAll("select[data-variants]")) {
      const value = select.current();
      select.replaceChildren(...this.options(names, value));
      select.value = value;
    }
  }

  replaceVariant(from, to) {
    const draft = this.draft;
    if (draft.defaultVariant === from) draft.defaultVariant = to;
    if (draft.offVariant === from) draft.offVariant = to;
    for (const rule of draft.rules) {
      if (rule.variant === from) rule.variant = to;
      rule.rollout.forEach((entry) => entry.variant === from && (entry.variant = to));
    }
    draft.rollout.forEach((entry) => entry.variant === from && (entry.variant = to));
  }

  ruleSection() {
    const draft = this.draft;
    const add = h("button", { type: "button", dataset: { action: "add-rule" }, onclick: () => this.change(() => {
      draft.rules.push({ name: "", conditions: [{ attribute: "", operator: "eq", text: "" }], serve: "variant", variant: draft.defaultVariant, rollout: [] });
    }, `rules.${draft.rules.length}.name`) }, "Add rule");
    return this.group("rules", "Rules",
      h("p", { class: "hint" }, "Tried in order: the first rule whose conditions all hold serves its variant or split."),
      draft.rules.map((rule, index) => this.ruleCard(rule, index)), add,
    );
  }

  ruleCard(rule, index) {
    const draft = this.draft;
    const path = `rules.${index}`;
    const serve = this.select(["variant", "split"], rule.serve, (v) => this.change(() => {
      rule.serve = v;
      if (v === "split" && rule.rollout.length === 0) rule.rollout = nameList(draft).slice(0, 2).map((name) => ({ variant: name, weight: "50" }));
    }, `${path}.serve`));
    const move = (to) => () => this.change(() => draft.rules.splice(to, 0, ...draft.rules.splice(index, 1)), `rules.${to}.name`);
    return this.group(path, `Rule ${index + 1}`,
      this.field(`${path}.name`, "Name (optional)", this.text(rule.name, (v) => (rule.name = v))),
      h("div", { class: "rows" }, rule.conditions.map((condition, position) => this.conditionRow(rule, index, condition, position))),
      h("button", { type: "button", onclick: () => this.change(() => rule.conditions.push({ attribute: "", operator: "eq", text: "" }),
        `${path}.conditions.${rule.conditions.length}.attribute`) }, "Add condition"),
      this.field(`${path}.serve`, "Then serve", serve),
      rule.serve === "split"
        ? this.rolloutEditor(`${path}.rollout`, rule.rollout)
        : this.field(`${path}.variant`, "Variant", this.variantSelect(nameList(draft), () => rule.variant, (v) => (rule.variant = v))),
      h("div", { class: "actions small" },
        h("button", { type: "button", disabled: index === 0, onclick: move(index - 1) }, "Move up"),
        h("button", { type: "button", disabled: index === draft.rules.length - 1, onclick: move(index + 1) }, "Move down"),
        h("button", { type: "button", class: "danger", onclick: () => this.change(() => draft.rules.splice(index, 1), "rules.0.name") }, "Remove rule"),
      ),
    );
  }

  conditionRow(rule, index, condition, position) {
    const path = `rules.${index}.conditions.${position}`;
    const label = `Rule ${index + 1} condition ${position + 1}`;
    const operator = this.select(OPERATORS, condition.operator, (v) => this.change(() => (condition.operator = v), `${path}.value`));
    // How the operand is read: lists are comma-separated (or JSON); 42 is a number, "42" (quoted) is text.
    const example = LIST_OPERATORS.has(condition.operator) ? 'DE, FR  or  ["DE", "FR"]' : '42, or "42" for text';
    return h("div", { class: "row condition", dataset: { field: path } },
      this.field(`${path}.attribute`, "Attribute", this.text(condition.attribute, (v) => (condition.attribute = v), { autocomplete: "off", "aria-label": `${label} attribute` })),
      this.field(`${path}.operator`, "Operator", operator),
      this.field(`${path}.value`, "Value", this.text(condition.text, (v) => (condition.text = v), { autocomplete: "off", "aria-label": `${label} value`, placeholder: example, title: example })),
      this.removeButton(`Remove ${label.toLowerCase()}`, () => rule.conditions.splice(position, 1), `rules.${index}.name`),
      this.errorSlot(),
    );
  }

  rolloutSection() {
    const draft = this.draft;
    const toggle = h("input", { type: "checkbox", checked: draft.split, dataset: { action: "split" }, onchange: (e) => this.change(() => {
      draft.split = e.target.checked;
      if (draft.split && draft.rollout.length === 0) draft.rollout = nameList(draft).slice(0, 2).map((name) => ({ variant: name, weight: "50" }));
    }, "rollout") });
    return this.group("rollout", "Rollout",
      h("label", { class: "check" }, toggle, " Split users by percentage when no rule matches"),
      draft.split ? this.rolloutEditor("rollout", draft.rollout, true) : null,
    );
  }

  rolloutEditor(path, entries, bare = false) {
    const names = nameList(this.draft);
    const total = h("p", { class: "hint", "aria-live": "polite" });
    const showTotal = () => {
      const sum = entries.reduce((acc, entry) => acc + (Number(entry.weight) || 0), 0);
      total.textContent = `Total ${sum} %${sum === 100 ? "" : " (must be 100 %)"}`;
    };
    const rows = entries.map((entry, k) => h("div", { class: "row split", dataset: { field: `${path}.${k}` } },
      this.field(`${path}.${k}.variant`, "Variant", this.variantSelect(names, () => entry.variant, (v) => (entry.variant = v))),
      this.field(`${path}.${k}.weight`, "Weight %", this.text(entry.weight, (v) => { entry.weight = v; showTotal(); }, { inputmode: "numeric", class: "narrow" })),
      this.removeButton(`Remove split ${k + 1}`, () => entries.splice(k, 1), `${path}.0.weight`),
      this.errorSlot(),
    ));
    showTotal();
    const add = h("button", { type: "button", onclick: () => this.change(() => entries.push({ variant: names[0] ?? "", weight: "0" }), `${path}.${entries.length}.weight`) }, "Add split");
    const body = [h("div", { class: "rows" }, rows), total, add];
    return bare ? body : h("div", { class: "nested", dataset: { field: path } }, body, this.errorSlot());
  }

  // Building blocks: every field a wrapper with `data-field` and an error slot; inputs update the draft.

  field(path, label, control, hint) {
    const id = uid("field");
    control.id = id;
    const children = [h("label", { for: id }, label), control];
    if (hint) children.push(h("p", { class: "hint" }, hint));
    return h("div", { class: "field", dataset: { field: path } }, children, this.errorSlot());
  }

  group(path, legend, ...children) {
    return h("fieldset", { class: "group", dataset: { field: path } }, h("legend", {}, legend), this.errorSlot(), children);
  }

  errorSlot() {
    return h("p", { class: "error", id: uid("error"), dataset: { error: "" }, hidden: true });
  }

  text(value, set, props = {}) {
    return h("input", { type: "text", value, ...props, oninput: (e) => { set(e.target.value); this.edited(); } });
  }

  select(choices, value, set, props = {}) {
    return h("select", { ...props, onchange: (e) => { set(e.target.value); this.edited(); } }, this.options(choices, value));
  }

  options(choices, value) {
    const all = choices.includes(value) ? choices : [...choices, value];
    return all.map((option) => h("option", { value: option, selected: option === value }, option));
  }

  /** A choice of variant; `get` reads the draft, so the choices can follow a rename. */
  variantSelect(names, get, set) {
    const select = this.select(names, get(), set, { dataset: { variants: "" } });
    select.current = get;
    return select;
  }

  removeButton(label, remove, focusPath) {
    return h("button", { type: "button", class: "remove", "aria-label": label, title: label, onclick: () => this.change(remove, focusPath) }, "✕");
  }

  /** Show problems next to their fields; returns how many were shown. */
  showProblems(problems) {
    this.clearProblems();
    for (const problem of problems) {
      const wrapper = this.wrapperFor(problem.path);
      const slot = wrapper.querySelector(":scope > [data-error]");
      slot.hidden = false;
      slot.append(h("span", {}, problem.message));
      const control = wrapper.querySelector(":scope > input, :scope > select, :scope > textarea");
      if (control) {
        control.setAttribute("aria-invalid", "true");
        control.setAttribute("aria-describedby", slot.id);
      }
    }
    const first = this.element.querySelector("[data-error]:not([hidden])");
    first?.closest("[data-field]")?.querySelector("input, select, textarea")?.focus();
    return problems.length;
  }

  /** The deepest wrapper whose path is a prefix of `path` (`values` errors belong to the value field). */
  wrapperFor(path) {
    const parts = path.replace(/\.values(?=\.|$)/, ".value").split(".");
    for (let n = parts.length; n > 0; n--) {
      const found = this.element.querySelector(`[data-field="${CSS.escape(parts.slice(0, n).join("."))}"]`);
      if (found) return found;
    }
    return this.element.querySelector('[data-field=""]');
  }

  clearProblems() {
    for (const slot of this.element.querySelectorAll("[data-error]")) {
      slot.hidden = true;
      slot.replaceChildren();
    }
    for (const control of this.element.querySelectorAll("[aria-invalid]")) {
      control.removeAttribute("aria-invalid");
      control.removeAttribute("aria-describedby");
    }
  }
}
