// A tiny TwiML reader: enough XML for `<Response>` documents (elements, attributes, text, entities).

export interface TwimlNode {
  name: string;
  attrs: Record<string, string>;
  children: TwimlNode[];
  /** Concatenated, entity-decoded text directly inside this element (untrimmed). */
  text: string;
}

const TOKEN = /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<!\[CDATA\[([\s\S]*?)\]\]>|<[^>]+>|[^<]+/g;
const ATTR = /([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;

export function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|lt|gt|amp|quot|apos);/gi, (_m, e: string) => {
    const lower = e.toLowerCase();
    if (lower === "lt") return "<";
    if (lower === "gt") return ">";
    if (lower === "amp") return "&";
    if (lower === "quot") return '"';
    if (lower === "apos") return "'";
    const code = lower.startsWith("#x")
      ? Number.parseInt(lower.slice(2), 16)
      : Number.parseInt(lower.slice(1), 10);
    return String.fromCodePoint(code);
  });
}

/** Parses a TwiML document and returns its root element (normally `Response`). Throws on garbage. */
export function parseTwiml(xml: string): TwimlNode {
  const root: TwimlNode = { name: "#document", attrs: {}, children: [], text: "" };
  const stack: TwimlNode[] = [root];
  for (const m of xml.matchAll(TOKEN)) {
    const tok = m[0];
    const top = stack[stack.length - 1] as TwimlNode;
    if (tok.startsWith("<!--") || tok.startsWith("<?")) continue;
    if (tok.startsWith("<![CDATA[")) {
      top.text += m[1] ?? "";
      continue;
    }
    if (tok.startsWith("</")) {
      const name = tok.slice(2, -1).trim();
      if (top.name !== name) throw new Error(`TwiML: unexpected </${name}> inside <${top.name}>`);
      stack.pop();
      continue;
    }
    if (tok.startsWith("<")) {
      const selfClosing = tok.endsWith("/>");
      const inner = tok.slice(1, selfClosing ? -2 : -1).trim();
      const nameEnd = inner.search(/\s/);
      const name = nameEnd === -1 ? inner : inner.slice(0, nameEnd);
      const attrs: Record<string, string> = {};
      for (const a of inner.slice(name.length).matchAll(ATTR)) {
        attrs[a[1] as string] = decodeEntities(a[2] ?? a[3] ?? "");
      }
      const node: TwimlNode = { name, attrs, children: [], text: "" };
      top.children.push(node);
      if (!selfClosing) stack.push(node);
      continue;
    }
    top.text += decodeEntities(tok);
  }
  if (stack.length !== 1) throw new Error("TwiML: unclosed element");
  const response = root.children[0];
  if (!response) throw new Error("TwiML: empty document");
  return response;
}
