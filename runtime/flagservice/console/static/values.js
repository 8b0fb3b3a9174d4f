// Flag values as people type them, and back: variant values by the flag's type, condition operands by operator.

import { JsonFloat, formatFloat, parseJson, stringify } from "./api.js";

export const TYPES = ["boolean", "string", "integer", "float", "object"];
export const OPERATORS = [
  "eq", "neq", "in", "not_in", "contains", "starts_with", "ends_with",
  "gt", "gte", "lt", "lte", "semver_eq", "semver_gt", "semver_lt",
];
export const LIST_OPERATORS = new Set(["in", "not_in"]);
const TEXT_OPERATORS = new Set(["contains", "starts_with", "ends_with", "semver_eq", "semver_gt", "semver_lt"]);
const INTEGER = /^-?\d+$/;
const FLOAT = /^-?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][-+]?\d+|\.\d+[eE][-+]?\d+)$/;

export function typeOf(value) {
  if (typeof value === "boolean") return "boolean";
  if (typeof value === "string") return "string";
  if (value instanceof JsonFloat) return "float";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "float";
  return "object";
}

/** The variant type of a flag: a float flag may hold 1.0, which JavaScript alone would call an integer. */
export function flagType(variants) {
  const types = new Set(Object.values(variants).map(typeOf));
  if (types.has("float")) return "float";
  return types.size ? [...types][0] : "boolean";
}

/** How a variant value is shown in its field. */
export function variantText(value, type) {
  if (type === "string") return typeof value === "string" ? value : stringify(value);
  if (type === "float" && typeof value === "number") return formatFloat(value);
  if (type === "object") return stringify(value, 2);
  return String(value);
}

/** A variant value from its field's text, or throws Error with a message for that field. */
export function variantValue(text, type) {
  const trimmed = text.trim();
  if (type === "string") return text;
  if (type === "boolean") {
    if (trimmed === "true" || trimmed === "false") return trimmed === "true";
    throw new Error("choose true or false");
  }
  if (type === "integer") {
    if (!INTEGER.test(trimmed) || !Number.isSafeInteger(Number(trimmed))) throw new Error("a whole number, like 3");
    return Number(trimmed);
  }
  if (type === "float") {
    if (!INTEGER.test(trimmed) && !FLOAT.test(trimmed)) throw new Error("a number, like 0.5");
    return new JsonFloat(Number(trimmed));
  }
  let parsed;
  try {
    parsed = parseJson(trimmed);
  } catch {
    throw new Error('JSON, like {"color": "blue"} or [1, 2]');
  }
  if (parsed === null || typeof parsed !== "object") throw new Error("a JSON object or array");
  return parsed;
}

/** A scalar as typed: `42` is a number, `true` a boolean, `"42"` (quoted) and anything else a string. */
function scalar(text) {
  const trimmed = text.trim();
  if (INTEGER.test(trimmed) && Number.isSafeInteger(Number(trimmed))) return Number(trimmed);
  if (FLOAT.test(trimmed)) return new JsonFloat(Number(trimmed));
  if (trimmed === "true" || trimmed === "false") return trimmed === "true";
  if (trimmed.startsWith('"')) {
    try {
      const parsed = JSON.parse(trimmed);
      if (typeof parsed === "string") return parsed;
    } catch {
      // not a JSON string after all: taken as typed
    }
  }
  return trimmed;
}

/** How a scalar is shown: a string that would read back as something else is quoted. */
function scalarText(value) {
  if (typeof value !== "string") return String(value);
  return value === "" || scalar(value) !== value ? JSON.stringify(value) : value;
}

/** A condition's operand from its field: `value` or (for in / not_in) `values`. Throws Error for a bad list. */
export function operand(operator, text) {
  if (LIST_OPERATORS.has(operator)) {
    const trimmed = text.trim();
    if (trimmed.startsWith("[")) {
      let parsed;
      try {
        parsed = parseJson(trimmed);
      } catch {
        throw new Error('a list, like DE, FR or ["DE", "FR"]');
      }
      if (!Array.isArray(parsed)) throw new Error('a list, like DE, FR or ["DE", "FR"]');
      return { values: parsed };
    }
    return { values: trimmed === "" ? [] : trimmed.split(",").map(scalar) };
  }
  if (TEXT_OPERATORS.has(operator)) {
    const value = scalar(text);
    return { value: typeof value === "string" ? value : text.trim() };
  }
  return { value: scalar(text) };
}

/** A condition's operand as its field shows it. */
export function operandText(condition) {
  if (LIST_OPERATORS.has(condition.operator)) {
    const values = condition.values || [];
    // A comma inside a value cannot survive the comma-separated form: such lists are shown as JSON.
    const plain = values.every((value) => typeof value !== "string" || !/^\s*\[|,/.test(value));
    return plain ? values.map(scalarText).join(", ") : stringify(values);
  }
  const value = condition.value;
  if (TEXT_OPERATORS.has(condition.operator) && typeof value === "string") return value;
  return value === undefined || value === null ? "" : scalarText(value);
}

export const sameJson = (a, b) => stringify(a) === stringify(b);

/** What a write changed: [{field, kind, before, after}], per variant and per rule (undefined: absent on that side). */
export function changes(before, after) {
  const found = [];
  for (const field of ["enabled", "description", "variants", "defaultVariant", "offVariant", "rules", "rollout"]) {
    const was = before?.[field];
    const now = after?.[field];
    if (field === "variants") found.push(...variantChanges(was ?? {}, now ?? {}));
    else if (field === "rules") found.push(...ruleChanges(was ?? [], now ?? []));
    else if (!sameJson(was ?? null, now ?? null)) found.push({ field, kind: field, before: was, after: now });
  }
  return found;
}

function variantChanges(was, now) {
  const names = [...new Set([...Object.keys(was), ...Object.keys(now)])];
  return names
    .filter((name) => !sameJson(was[name] ?? null, now[name] ?? null))
    .map((name) => ({ field: `variant ${name}`, kind: "variant", before: was[name], after: now[name] }));
}

function ruleChanges(was, now) {
  const found = [];
  for (let i = 0; i < Math.max(was.length, now.length); i++) {
    if (!sameJson(was[i] ?? null, now[i] ?? null)) found.push({ field: `rule ${i + 1}`, kind: "rule", before: was[i], after: now[i] });
  }
  return found;
}

const splitText = (rollout) => rollout.map((entry) => `${entry.variant} ${entry.weight} %`).join(", ");

function conditionText(condition) {
  const operand = LIST_OPERATORS.has(condition.operator)
    ? `[${(condition.values || []).map((value) => stringify(value)).join(", ")}]`
    : stringify(condition.value);
  return `${condition.attribute} ${condition.operator} ${operand}`;
}

/** A rule in one line: `beta: country in ["DE", "FR"] → modern`. */
export function ruleText(rule) {
  const when = rule.conditions.length ? rule.conditions.map(conditionText).join(" and ") : "always";
  const then = rule.rollout ? `split ${splitText(rule.rollout)}` : rule.variant;
  return `${rule.name ? `${rule.name}: ` : ""}${when} → ${then}`;
}

/** A value in one short line, for history and dialogs. */
export function summary(kind, value) {
  if (value === undefined) return "—";
  if (kind === "enabled") return value ? "on" : "off";
  if (kind === "rollout") return value.length ? splitText(value) : "none";
  if (kind === "rule") return ruleText(value);
  if (kind === "description") return value === "" ? "(empty)" : value;
  return typeof value === "string" && kind !== "variant" ? value : stringify(value);
}
