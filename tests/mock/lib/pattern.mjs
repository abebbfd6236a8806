// A string matching a JSON Schema `pattern`, for schema-following replies.
//
// Real-world schemas use simple patterns (`^[A-Z]{3}$`, `^[0-9]{4}$`,
// `^\d+(\.\d+)?$`), so a small generator is enough: literals, escapes,
// classes, `.`, groups with alternation (first branch) and quantifiers
// (fewest repetitions, more when a length bound asks for it). Every result
// is checked against the real RegExp; undefined when nothing fits.

const MAX_STRETCH = 64;

/** A string matching `pattern` with a length in [minLength, maxLength], or undefined. */
export function patternInstance(pattern, { minLength = 0, maxLength = Infinity } = {}) {
  const regex = compile(pattern);
  if (!regex) return undefined;
  let tree;
  try {
    tree = new Parser(pattern).parse();
  } catch {
    return undefined;
  }
  for (let stretch = 0; stretch <= MAX_STRETCH; stretch += 1) {
    const text = generate(tree, stretch);
    const length = [...text].length;
    if (length > maxLength) return undefined;
    if (length >= minLength && regex.test(text)) return text;
  }
  return undefined;
}

/** JSON Schema patterns are ECMA-262 and unanchored; unicode mode first, as validators use it. */
export function compile(pattern) {
  for (const flags of ['u', '']) {
    try {
      return new RegExp(pattern, flags);
    } catch {
      // try the next flags
    }
  }
  return null;
}

// ---------------------------------------------------------------- parsing

/** Single characters an escape stands for when generating. */
const ESCAPE_SAMPLES = { d: '0', D: 'a', w: 'a', W: '-', s: ' ', S: 'a', n: '\n', r: '\r', t: '\t', f: '\f', v: '\v', 0: '\0' };
/** Tried in order for a negated class. */
const NEGATED_CANDIDATES = ['a', 'A', '0', 'x', '_', '-', ' ', '.'];

class Parser {
  constructor(source) {
    this.source = source;
    this.at = 0;
  }

  parse() {
    const node = this.alternation();
    if (this.at < this.source.length) throw new Error('unbalanced )');
    return node;
  }

  peek() {
    return this.source[this.at];
  }

  alternation() {
    const branches = [this.sequence()];
    while (this.peek() === '|') {
      this.at += 1;
      branches.push(this.sequence());
    }
    return { kind: 'alt', branches };
  }

  sequence() {
    const items = [];
    while (this.at < this.source.length && this.peek() !== '|' && this.peek() !== ')') {
      const atom = this.atom();
      items.push(this.quantified(atom));
    }
    return { kind: 'seq', items };
  }

  atom() {
    const c = this.source[this.at++];
    if (c === '(') return this.group();
    if (c === '[') return this.characterClass();
    if (c === '\\') return this.escape();
    if (c === '.') return { kind: 'char', text: 'a' };
    if (c === '^' || c === '$') return { kind: 'char', text: '' };
    return { kind: 'char', text: c };
  }

  group() {
    let lookaround = false;
    if (this.peek() === '?') {
      const head = this.source.slice(this.at, this.at + 3);
      lookaround = /^\?(=|!|<=|<!)/.test(head);
      const close = this.source[this.at + 1] === '<' && !lookaround ? this.source.indexOf('>', this.at) + 1 : 0;
      this.at = close || this.at + (head.startsWith('?<=') || head.startsWith('?<!') ? 3 : 2);
    }
    const inner = this.alternation();
    if (this.source[this.at++] !== ')') throw new Error('missing )');
    // Lookarounds match no characters; the final RegExp check catches what they forbid.
    return lookaround ? { kind: 'char', text: '' } : inner;
  }

  characterClass() {
    const negated = this.peek() === '^';
    if (negated) this.at += 1;
    const ranges = [];
    let first = true;
    while (this.at < this.source.length && (this.peek() !== ']' || first)) {
      first = false;
      let low = this.classChar();
      if (this.peek() === '-' && this.source[this.at + 1] !== ']' && this.at + 1 < this.source.length) {
        this.at += 1;
        const high = this.classChar();
        ranges.push([low, high]);
      } else {
        ranges.push([low, low]);
      }
    }
    this.at += 1; // the closing ]
    if (!negated) return { kind: 'char', text: ranges[0]?.[0] ?? '' };
    const inClass = (ch) => ranges.some(([lo, hi]) => ch >= lo && ch <= hi);
    return { kind: 'char', text: NEGATED_CANDIDATES.find((ch) => !inClass(ch)) ?? '' };
  }

  classChar() {
    const c = this.source[this.at++];
    if (c !== '\\') return c;
    const e = this.source[this.at++];
    return ESCAPE_SAMPLES[e] ?? e;
  }

  escape() {
    const e = this.source[this.at++];
    if (e === 'b' || e === 'B') return { kind: 'char', text: '' };
    if (/[1-9]/.test(e)) return { kind: 'char', text: '' };
    if (e === 'u' || e === 'x') {
      const hex = /^\{?([0-9a-fA-F]+)\}?/.exec(this.source.slice(this.at, this.at + (e === 'x' ? 2 : 8)));
      if (hex) {
        this.at += hex[0].length;
        return { kind: 'char', text: String.fromCodePoint(Number.parseInt(hex[1], 16)) };
      }
    }
    if ((e === 'p' || e === 'P') && this.peek() === '{') {
      this.at = this.source.indexOf('}', this.at) + 1;
      return { kind: 'char', text: e === 'p' ? 'a' : '0' };
    }
    return { kind: 'char', text: ESCAPE_SAMPLES[e] ?? e };
  }

  quantified(atom) {
    const c = this.peek();
    let min;
    let max;
    if (c === '*' || c === '+' || c === '?') {
      this.at += 1;
      [min, max] = { '*': [0, Infinity], '+': [1, Infinity], '?': [0, 1] }[c];
    } else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.source.slice(this.at));
      if (!m) return atom;
      this.at += m[0].length;
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
    } else {
      return atom;
    }
    if (this.peek() === '?' || this.peek() === '+') this.at += 1; // lazy / possessive
    return { kind: 'repeat', atom, min, max };
  }
}

/** The text of a parse tree; `stretch` extra repetitions per quantifier where allowed. */
function generate(node, stretch) {
  switch (node.kind) {
    case 'alt':
      return generate(node.branches[0], stretch);
    case 'seq':
      return node.items.map((item) => generate(item, stretch)).join('');
    case 'repeat':
      return generate(node.atom, stretch).repeat(Math.min(node.min + stretch, node.max));
    default:
      return node.text;
  }
}
