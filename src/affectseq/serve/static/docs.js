"use strict";
// Renders /openapi.json as a plain list of operations: FastAPI's own /docs page loads
// Swagger UI from a CDN, and this server must work without the internet.

function cell(tr, text, tag = "td") {
  const el = document.createElement(tag);
  el.textContent = text;
  tr.append(el);
}

function table(headers, rows) {
  const t = document.createElement("table");
  const head = document.createElement("tr");
  headers.forEach((h) => cell(head, h, "th"));
  t.append(head);
  for (const row of rows) {
    const tr = document.createElement("tr");
    row.forEach((v) => cell(tr, v));
    t.append(tr);
  }
  return t;
}

async function render() {
  const spec = await (await fetch("/openapi.json")).json();
  document.getElementById("intro").textContent = `${spec.info.title} ${spec.info.version}: ${spec.info.description || ""}`;
  const ops = document.getElementById("ops");
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const div = document.createElement("div");
      div.className = "op";
      const h = document.createElement("h3");
      const m = document.createElement("span");
      m.className = "method";
      m.textContent = method.toUpperCase();
      h.append(m, path);
      div.append(h);
      const p = document.createElement("p");
      p.textContent = [op.summary, op.description].filter(Boolean).join(". ");
      div.append(p);
      const params = (op.parameters || []).map((x) => [x.name, x.in, (x.schema && x.schema.type) || "", x.required ? "required" : "optional"]);
      const body = op.requestBody && op.requestBody.content;
      if (body) {
        for (const [mime, content] of Object.entries(body)) {
          const props = (content.schema && content.schema.properties) || {};
          const required = (content.schema && content.schema.required) || [];
          for (const [name, s] of Object.entries(props)) {
            params.push([name, `body (${mime})`, `${s.type || ""}${s.format ? " " + s.format : ""}`,
              `${required.includes(name) ? "required" : "optional"}${s.description ? ": " + s.description : ""}`]);
          }
        }
      }
      if (params.length) div.append(table(["parameter", "in", "type", ""], params));
      const responses = Object.entries(op.responses || {}).map(([code, r]) => [code, r.description || ""]);
      div.append(table(["status", "meaning"], responses));
      ops.append(div);
    }
  }
}

render();
