// Tiny DOM helpers: elements are built with textContent only, so user data is never parsed as HTML.

const PROPS = new Set(["value", "checked", "selected", "disabled", "hidden", "htmlFor",
  "indeterminate", "open", "required", "readOnly", "multiple"]);

/** h("button", {class: "btn", onclick}, "Text", child, [more]) */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, val] of Object.entries(props || {})) {
    if (val === null || val === undefined || val === false) continue;
    if (key === "class") el.className = Array.isArray(val) ? val.filter(Boolean).join(" ") : val;
    else if (key === "dataset") Object.assign(el.dataset, val);
    else if (key === "style" && typeof val === "object") Object.assign(el.style, val);
    else if (key.startsWith("on") && typeof val === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), val);
    } else if (PROPS.has(key)) el[key] = val;
    else el.setAttribute(key, val === true ? "" : String(val));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** Replace el's children. */
export function mount(el, ...children) {
  clear(el);
  return append(el, children);
}

let uid = 0;
/** A unique id for label/input pairs. */
export function newId(prefix = "f") {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A labelled form field: label above the control, optional hint and error slot. */
export function field(label, control, { hint, wide } = {}) {
  if (!control.id) control.id = newId();
  const hintEl = hint ? h("p", { class: "hint", id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: ["field", wide && "field-wide"] },
    h("label", { htmlFor: control.id }, label), control, hintEl);
}

/** <select> from [[value, label], ...] or [{value, label, group}] */
export function select(props, options, selected) {
  const el = h("select", props);
  const groups = new Map();
  for (const opt of options) {
    const [value, label, group] = Array.isArray(opt) ? opt : [opt.value, opt.label, opt.group];
    const o = h("option", { value: String(value) }, label);
    if (selected !== undefined && String(selected) === String(value)) o.selected = true;
    if (group) {
      if (!groups.has(group)) {
        const g = h("optgroup", { label: group });
        groups.set(group, g);
        el.append(g);
      }
      groups.get(group).append(o);
    } else el.append(o);
  }
  return el;
}
