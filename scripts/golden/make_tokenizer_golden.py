"""Token ids that the Rust `tokenizers` library gives for tricky strings.

    python3 scripts/golden/make_tokenizer_golden.py PATH/TO/gpt-neox-20b-tokenizer.json \
        [--out test/fixtures/golden/tokenizer.json]

The tokenizer file itself is not committed (the test finds it under ../shared/data or skips).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import unicodedata

import tokenizers
from tokenizers import Tokenizer

CASES: list[tuple[str, str]] = [
    ("ascii", "Hello, world!"),
    ("leading-space", " leading space"),
    ("leading-spaces-3", "   three leading spaces"),
    ("trailing-spaces", "trailing spaces   "),
    ("inner-space-runs", "multiple     spaces    inside"),
    ("space-run-24", "x" + " " * 24 + "y"),
    ("space-run-30", " " * 30 + "z"),
    ("indent-after-newline", "\n        code\n            more"),
    ("tabs", "tabs\tand\t\ttabs"),
    ("newlines", "line1\nline2\n\nline4"),
    ("crlf", "\r\n windows newline\r\n"),
    ("empty", ""),
    ("single-space", " "),
    ("single-newline", "\n"),
    ("endoftext", "<|endoftext|>"),
    ("endoftext-inline", "before<|endoftext|>after"),
    ("endoftext-spaced", "<|endoftext|> with spaces <|endoftext|>"),
    ("padding-token", "<|padding|>"),
    ("emoji", "emoji 😀🎉"),
    ("emoji-zwj-family", "ZWJ family 👨‍👩‍👧‍👦"),
    ("emoji-flag-skin", "flag 🇯🇵 and skin tone 👍🏽"),
    ("emoji-rainbow-flag", "🏳️‍🌈 rainbow flag"),
    ("japanese", "日本語のテキスト"),
    ("chinese", "中文字符和标点，。！"),
    ("korean", "한국어 텍스트"),
    ("combining-vs-precomposed", "combining: e\u0301 vs \u00e9"),
    ("combining-stack", "Zalgo: Z\u0351\u0307a\u0310l\u0352g\u0346o"),
    ("greek-cyrillic", "Ελληνικά и русский текст"),
    ("arabic", "مرحبا بالعالم"),
    ("hebrew", "עברית"),
    ("devanagari", "हिन्दी देवनागरी"),
    ("python", "def f(x):\n    return x ** 2  # square\n"),
    ("javascript", "if (a && b) { console.log(`${a}`); }"),
    ("html", "<html><body class=\"x\">&amp;</body></html>"),
    ("numbers", "numbers 1234567890 3.14159 -42 1e-10 0x1F"),
    ("dates-thousands", "1,000,000.00 and 2024-11-28 12:34:56"),
    ("latin-accents", "Mixed: café naïve résumé Ünïcödé"),
    ("mixed-indent", "  indented\n\tcode\n    block"),
    ("case", "UPPER lower MiXeD CaSe"),
    ("contractions", "don't won't I'm you're they'll"),
    ("url", "https://example.com/path?q=1&r=2#frag"),
    ("email-hashtag", "email@example.com @mention #hashtag"),
    ("math-symbols", "math: ∑ ∫ √ ∞ ≤ ≥ ≠ ± × ÷"),
    ("nbsp-zero-width", "\u00a0nbsp and\u200bzero-width space"),
    ("punctuation-runs", "repeated !!!!!!!!!! ?????"),
    ("ligatures", "ﬁ ligature ﬀ"),
    ("mixed-scripts", "Tokyo東京Москва🚀 mix"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tokenizer", help="path to gpt-neox-20b-tokenizer.json")
    ap.add_argument("--out", default="test/fixtures/golden/tokenizer.json")
    args = ap.parse_args()
    with open(args.tokenizer, "rb") as f:
        raw = f.read()
    tok = Tokenizer.from_str(raw.decode("utf-8"))
    names = [n for n, _ in CASES]
    assert len(set(names)) == len(names), "duplicate case names"
    cases = []
    for name, text in CASES:
        enc = tok.encode(text)  # add_special_tokens=True (the default)
        ids = list(enc.ids)
        plain = tok.encode(text, add_special_tokens=False).ids
        assert list(plain) == ids, f"{name}: post-processor added tokens; record both"
        decoded = tok.decode(ids, skip_special_tokens=False)
        cases.append({
            "name": name,
            "text": text,
            "ids": ids,
            "tokens": list(enc.tokens),
            "decoded": decoded,
            "decoded_equals_text": decoded == text,
            "decoded_equals_nfc_text": decoded == unicodedata.normalize("NFC", text),
            "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
        })
        print(f"{name:26s} {len(ids):3d} ids  round-trip={'ok' if decoded == text else 'NFC' if cases[-1]['decoded_equals_nfc_text'] else 'DIFFERS'}")
    out = {
        "format": "mamba-studio/tokenizer-golden@1",
        "made_by": "python3 scripts/golden/make_tokenizer_golden.py ../shared/data/gpt-neox-20b-tokenizer.json",
        "tokenizer_file": os.path.basename(args.tokenizer),
        "tokenizer_sha256": hashlib.sha256(raw).hexdigest(),
        "tokenizers_version": tokenizers.__version__,
        "encode": "Tokenizer.encode(text) with add_special_tokens=True (the default); this tokenizer's "
                  "ByteLevel post-processor adds no tokens, so ids are the same with it off",
        "decode": "decoded = Tokenizer.decode(ids, skip_special_tokens=False); decoded_skip_special with True. "
                  "The normalizer is NFC, so text that is not NFC comes back NFC-normalized",
        "cases": cases,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{len(cases)} strings -> {args.out} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    main()
