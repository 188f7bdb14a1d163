"""``lstm_seq2seq``: an LSTM encoder-decoder translator trained with teacher forcing.

Text is lower-cased and split on whitespace. One vocabulary serves both languages and is built
from the *training* pairs only, most frequent token first (ties alphabetical); the specials are
``<pad>`` = 0, ``<sos>`` = 1, ``<eos>`` = 2, ``<unk>`` = 3, and a validation or test token the
training pairs never show becomes ``<unk>``. Sentences are cut to ``max_len`` (20) tokens.

- ``src``: the source tokens, padded to ``max_len``.
- ``tgt_in`` (decoder input): ``<sos>`` + target tokens, padded to ``max_len + 1``.
- ``tgt_out`` (training target): target tokens + ``<eos>``, padded to ``max_len + 1``: the
  decoder input shifted one step left.

The source appended ``<eos>`` after the padding, so it never sat right after the last real
token: with padding ignored by the loss, its model only ever saw ``<eos>`` at the final
position and could not learn where a translation ends. That defect is fixed here: ``<eos>``
follows the last real token. The loss skips padding (``ignore_index=0``).

Model: encoder Embedding(V, 128) → LSTM(128, 256) whose final (h, c) starts the decoder
Embedding(V, 128) → LSTM(128, 256) → RNN(256, 128) "refinement" layer → Linear(128, V).
``model(src, tgt_in)`` returns logits of shape (batch, max_len + 1, V). The encoder reads each
sentence only up to its last real token (a packed sequence): the same LSTM and parameters, but
its final (h, c) is not washed out by up to 20 steps of padding, which on the synthetic corpus
learns markedly faster and costs less. The decoder runs over the padded ``tgt_in``; the loss
ignores the padded positions.

Datasets:

- ``synthetic_translation`` (embedded, no download): a seeded synthetic parallel corpus with
  real structure. English-like sentences come from a small grammar (subject, verb, object, an
  optional prepositional phrase, optional adjectives) and are translated word for word into an
  invented language whose words are built from syllables (the same lexicon for every seed) and
  whose word order differs: adjectives follow their noun, prepositions become postpositions,
  the prepositional phrase moves before the object and the verb goes last. Sentences are drawn
  from torch's global RNG, which benchkit seeds per run, so each seed has its own corpus; the
  pairs are distinct, so held-out pairs are unseen sentences.
- ``parallel_text``: real parallel data from files: JSON lines with one pair per line
  (``{"en": ..., "de": ...}`` as Multi30k is published; ``path``, ``source_field``,
  ``target_field``) or two aligned plain-text files, one sentence per line (``source_path``,
  ``target_path``). Files are UTF-8; pairs with an empty side are skipped; ``max_pairs`` > 0
  keeps only the first pairs and ``min_freq`` drops rarer training tokens to ``<unk>``. The
  pairs are split in file order: the first part trains, then validation, then test
  (``valid_fraction``, ``test_fraction``; a fraction of 0 leaves that split out).

Quality metrics (``evaluate``): ``token_accuracy`` (share of non-padding target tokens the
teacher-forced model predicts right), ``token_loss`` (mean cross-entropy per non-padding token,
computed in float32 whatever the run's precision) and ``perplexity`` (its exponential) on the
validation split (the test split when there is none), and ``exact_match``: the share of
held-out pairs (the test split, else validation) whose greedy translation, decoded up to
``max_len + 1`` steps and stopped at ``<eos>``, equals the reference token for token.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import benchkit
import benchkit.errors
from benchkit import Data, Metric, Recipe, Split

PAD, SOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ["<pad>", "<sos>", "<eos>", "<unk>"]
MAX_LEN = 20

SYNTHETIC_OPTIONS = {
    "pairs": 1200,
    "nouns": 12,
    "verbs": 6,
    "adjectives": 6,
    "valid_fraction": 0.1,
    "test_fraction": 0.1,
    "max_len": MAX_LEN,
}
PARALLEL_OPTIONS = {
    "path": None,
    "source_field": "en",
    "target_field": "de",
    "source_path": None,
    "target_path": None,
    "max_pairs": 0,
    "min_freq": 1,
    "valid_fraction": 0.1,
    "test_fraction": 0.1,
    "max_len": MAX_LEN,
}

# --- tokens and vocabulary --------------------------------------------------------------------


def tokenize(sentence: str) -> list[str]:
    """Lower-cased whitespace split."""
    return sentence.lower().split()


def build_vocab(pairs: Sequence[tuple[str, str]], min_freq: int = 1) -> list[str]:
    """One vocabulary for both sides of ``pairs``: the specials, then every token seen at
    least ``min_freq`` times, most frequent first (ties alphabetical)."""
    counts = Counter(tok for pair in pairs for side in pair for tok in tokenize(side))
    words = sorted((w for w, n in counts.items() if n >= min_freq), key=lambda w: (-counts[w], w))
    return SPECIALS + [w for w in words if w not in SPECIALS]


def encode(sentence: str, index: dict[str, int], max_len: int) -> list[int]:
    """Token ids of the first ``max_len`` tokens, unknown tokens as ``<unk>``."""
    return [index.get(tok, UNK) for tok in tokenize(sentence)[:max_len]]


def make_split(pairs: Sequence[tuple[str, str]], index: dict[str, int], max_len: int) -> Split:
    """``Split((src, tgt_in), tgt_out)``, int64: src padded to ``max_len``; ``<sos>`` + target
    and target + ``<eos>`` padded to ``max_len + 1`` (``<eos>`` right after the last token)."""
    n = len(pairs)
    src = torch.full((n, max_len), PAD, dtype=torch.long)
    tgt_in = torch.full((n, max_len + 1), PAD, dtype=torch.long)
    tgt_out = torch.full((n, max_len + 1), PAD, dtype=torch.long)
    for row, (source, target) in enumerate(pairs):
        s, t = encode(source, index, max_len), encode(target, index, max_len)
        src[row, : len(s)] = torch.tensor(s, dtype=torch.long)
        tgt_in[row, : len(t) + 1] = torch.tensor([SOS, *t], dtype=torch.long)
        tgt_out[row, : len(t) + 1] = torch.tensor([*t, EOS], dtype=torch.long)
    return Split((src, tgt_in), tgt_out)


def split_counts(
    n: int, valid_fraction: float, test_fraction: float, where: str
) -> tuple[int, int]:
    """Sizes of the validation and test splits (each at least 1 when its fraction is > 0)."""
    for name, f in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if not 0 <= f < 1:
            raise benchkit.errors.BenchkitError(f"{where}: {name} must be in [0, 1), got {f}")
    n_valid = max(1, round(n * valid_fraction)) if valid_fraction > 0 else 0
    n_test = max(1, round(n * test_fraction)) if test_fraction > 0 else 0
    if n - n_valid - n_test < 1:
        raise benchkit.errors.BenchkitError(
            f"{where}: {n} pairs are too few to split into train, validation and test "
            f"(valid_fraction={valid_fraction}, test_fraction={test_fraction})"
        )
    return n_valid, n_test


def make_data(
    pairs: Sequence[tuple[str, str]], options: dict, where: str, min_freq: int = 1
) -> Data:
    """Split ``pairs`` in order into train / valid / test, build the vocabulary from train."""
    max_len = int(options["max_len"])
    if max_len < 1:
        raise benchkit.errors.BenchkitError(f"{where}: max_len must be at least 1, got {max_len}")
    n_valid, n_test = split_counts(
        len(pairs), float(options["valid_fraction"]), float(options["test_fraction"]), where
    )
    n_train = len(pairs) - n_valid - n_test
    train, valid = pairs[:n_train], pairs[n_train : n_train + n_valid]
    test = pairs[n_train + n_valid :]
    vocab = build_vocab(train, min_freq)
    index = {tok: i for i, tok in enumerate(vocab)}
    return Data(
        train=make_split(train, index, max_len),
        valid=make_split(valid, index, max_len) if valid else None,
        test=make_split(test, index, max_len) if test else None,
        info={
            "vocab": vocab,
            "vocab_size": len(vocab),
            "max_len": max_len,
            "pad_index": PAD,
            "sos_index": SOS,
            "eos_index": EOS,
            "unk_index": UNK,
        },
    )


# --- synthetic_translation --------------------------------------------------------------------

DETERMINERS = ["the", "a"]
NOUNS = [
    "dog",
    "cat",
    "bird",
    "horse",
    "child",
    "woman",
    "man",
    "teacher",
    "farmer",
    "doctor",
    "girl",
    "boy",
    "friend",
    "king",
    "queen",
    "baker",
    "ball",
    "book",
    "apple",
    "house",
    "river",
    "tree",
    "garden",
    "car",
    "boat",
    "letter",
    "song",
    "cake",
    "window",
    "door",
    "table",
    "city",
]
VERBS = [
    "sees",
    "likes",
    "finds",
    "carries",
    "paints",
    "watches",
    "builds",
    "follows",
    "holds",
    "buys",
    "opens",
    "helps",
    "draws",
    "loves",
    "reads",
    "throws",
]
ADJECTIVES = [
    "big",
    "small",
    "red",
    "old",
    "young",
    "happy",
    "green",
    "tall",
    "quiet",
    "bright",
    "dark",
    "white",
    "blue",
    "heavy",
    "strange",
    "tired",
]
PREPOSITIONS = ["in", "near", "behind", "under", "beside", "across"]

CONSONANTS = "ptkbdgmnlrsvzh"
VOWELS = "aeiou"
LEXICON_SEED = 30_000  # fixes the invented language; it does not change per run


def lexicon() -> dict[str, str]:
    """English word → invented word, built from consonant-vowel syllables (fixed, not seeded
    per run): one syllable for determiners and prepositions, two or three for the rest."""
    rng = random.Random(LEXICON_SEED)
    english = set(DETERMINERS + NOUNS + VERBS + ADJECTIVES + PREPOSITIONS)
    used: set[str] = set()
    out: dict[str, str] = {}
    for group, syllables in (
        (DETERMINERS, (1,)),
        (PREPOSITIONS, (1, 2)),
        (NOUNS + VERBS + ADJECTIVES, (2, 3)),
    ):
        for word in group:
            while True:
                count = rng.choice(syllables)
                made = "".join(rng.choice(CONSONANTS) + rng.choice(VOWELS) for _ in range(count))
                if made not in used and made not in english:
                    break
            used.add(made)
            out[word] = made
    return out


def _pick(words: Sequence[str]) -> str:
    return words[int(torch.randint(len(words), ()))]


def _noun_phrase(nouns: Sequence[str], adjectives: Sequence[str]) -> tuple[list[str], list[str]]:
    """(source, target) words of ``det [adj] noun``; the target puts the adjective after."""
    det, noun = _pick(DETERMINERS), _pick(nouns)
    adj = [_pick(adjectives)] if bool(torch.rand(()) < 0.5) else []
    return [det, *adj, noun], [det, noun, *adj]


def synthetic_pair(
    nouns: Sequence[str], verbs: Sequence[str], adjectives: Sequence[str]
) -> tuple[list[str], list[str]]:
    """One sentence in English word order and in the target word order (still English words):
    ``S V O [P NP]`` → ``S [NP P] O V``."""
    subj_s, subj_t = _noun_phrase(nouns, adjectives)
    verb = _pick(verbs)
    obj_s, obj_t = _noun_phrase(nouns, adjectives)
    source, target_pp = [*subj_s, verb, *obj_s], []
    if bool(torch.rand(()) < 0.5):
        prep = _pick(PREPOSITIONS)
        np_s, np_t = _noun_phrase(nouns, adjectives)
        source += [prep, *np_s]
        target_pp = [*np_t, prep]
    return source, [*subj_t, *target_pp, *obj_t, verb]


def synthetic_translation(options: dict) -> Data:
    """``pairs`` distinct sentence pairs of the synthetic grammar, translated and reordered."""
    where = "synthetic_translation"
    sizes = {"nouns": NOUNS, "verbs": VERBS, "adjectives": ADJECTIVES}
    chosen = {}
    for key, words in sizes.items():
        n = int(options[key])
        if not 1 <= n <= len(words):
            raise benchkit.errors.BenchkitError(
                f"{where}: {key} must be between 1 and {len(words)}, got {n}"
            )
        chosen[key] = words[:n]
    wanted = int(options["pairs"])
    if wanted < 3:
        raise benchkit.errors.BenchkitError(f"{where}: pairs must be at least 3, got {wanted}")
    words = lexicon()
    seen: set[str] = set()
    pairs: list[tuple[str, str]] = []
    for _ in range(20 * wanted):
        source, target = synthetic_pair(chosen["nouns"], chosen["verbs"], chosen["adjectives"])
        text = " ".join(source)
        if text in seen:
            continue
        seen.add(text)
        pairs.append((text, " ".join(words[w] for w in target)))
        if len(pairs) == wanted:
            break
    else:
        raise benchkit.errors.BenchkitError(
            f"{where}: the grammar made only {len(pairs)} distinct sentences of the "
            f"{wanted} asked for; raise nouns/verbs/adjectives or lower pairs"
        )
    data = make_data(pairs, options, where)
    data.info["lexicon"] = words
    return data


# --- parallel_text ----------------------------------------------------------------------------


def _read_lines(path: str, where: str) -> list[str]:
    file = Path(path).expanduser()
    if not file.is_file():
        raise benchkit.errors.BenchkitError(f"{where}: {file}: no such file")
    try:
        lines = file.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise benchkit.errors.BenchkitError(f"{where}: {file}: not UTF-8 text: {exc}") from None
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise benchkit.errors.BenchkitError(f"{where}: {file}: the file is empty")
    return lines


def read_jsonl(path: str, source_field: str, target_field: str) -> list[tuple[str, str]]:
    """Pairs from a JSON-lines file, one object per line with the two text fields; blank lines
    are skipped."""
    where = "parallel_text"
    pairs = []
    for number, line in enumerate(_read_lines(path, where), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise benchkit.errors.BenchkitError(
                f"{where}: {path}: line {number} is not valid JSON: {exc.msg} (column {exc.colno})"
            ) from None
        if not isinstance(record, dict):
            raise benchkit.errors.BenchkitError(
                f"{where}: {path}: line {number} is not a JSON object"
            )
        for field in (source_field, target_field):
            if field not in record:
                found = ", ".join(map(repr, record)) or "none"
                raise benchkit.errors.BenchkitError(
                    f"{where}: {path}: line {number} has no field {field!r} (fields: {found}); "
                    "set the source_field / target_field options to the file's names"
                )
            if not isinstance(record[field], str):
                raise benchkit.errors.BenchkitError(
                    f"{where}: {path}: line {number}: field {field!r} is not a string"
                )
        pairs.append((record[source_field], record[target_field]))
    return pairs


def read_aligned(source_path: str, target_path: str) -> list[tuple[str, str]]:
    """Pairs from two plain-text files, line i of one translating line i of the other."""
    where = "parallel_text"
    sources = _read_lines(source_path, where)
    targets = _read_lines(target_path, where)
    if len(sources) != len(targets):
        raise benchkit.errors.BenchkitError(
            f"{where}: {source_path} has {len(sources)} lines but {target_path} has "
            f"{len(targets)}; the two files must be aligned line by line"
        )
    return list(zip(sources, targets, strict=True))


def parallel_text(options: dict) -> Data:
    """Real parallel data from a JSON-lines file or two aligned text files."""
    where = "parallel_text"
    path, source_path, target_path = (
        options.get(k) for k in ("path", "source_path", "target_path")
    )
    if path and (source_path or target_path):
        raise benchkit.errors.BenchkitError(
            f"{where}: set either path (JSON lines) or source_path and target_path, not both"
        )
    if path:
        pairs = read_jsonl(str(path), options["source_field"], options["target_field"])
    elif source_path and target_path:
        pairs = read_aligned(str(source_path), str(target_path))
    elif source_path or target_path:
        raise benchkit.errors.BenchkitError(
            f"{where}: source_path and target_path go together: set both, one file per language"
        )
    else:
        raise benchkit.errors.BenchkitError(
            f"{where}: no data: set the option path to a JSON-lines file, or both "
            "source_path and target_path to two aligned text files"
        )
    pairs = [(s, t) for s, t in pairs if s.strip() and t.strip()]
    limit = int(options.get("max_pairs") or 0)
    if limit > 0:
        pairs = pairs[:limit]
    return make_data(pairs, options, where, min_freq=int(options.get("min_freq", 1)))


# --- model ------------------------------------------------------------------------------------


class Encoder(nn.Module):
    """Embedding(V, E) → LSTM(E, H); returns the final (h, c)."""

    def __init__(self, vocab: int, embedding: int, hidden: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, embedding)
        self.lstm = nn.LSTM(embedding, hidden, batch_first=True)

    def forward(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The LSTM's (h, c) after each sentence's last real token (padding is not read)."""
        lengths = (src != PAD).sum(1).clamp_min(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(
            self.embedding(src), lengths, batch_first=True, enforce_sorted=False
        )
        _, state = self.lstm(packed)
        return state


class Decoder(nn.Module):
    """Embedding(V, E) → LSTM(E, H) from the encoder's state → RNN(H, R) → Linear(R, V)."""

    def __init__(self, vocab: int, embedding: int, hidden: int, refine: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, embedding)
        self.lstm = nn.LSTM(embedding, hidden, batch_first=True)
        self.refine = nn.RNN(hidden, refine, batch_first=True)
        self.out = nn.Linear(refine, vocab)

    def forward(self, tokens: torch.Tensor, state: tuple, refine_state=None):
        """Logits for ``tokens`` (batch, T) and the states to continue from."""
        hidden, state = self.lstm(self.embedding(tokens), state)
        refined, refine_state = self.refine(hidden, refine_state)
        return self.out(refined), state, refine_state


class Seq2Seq(nn.Module):
    """The encoder-decoder; ``model(src, tgt_in)`` → logits (batch, T, V) by teacher forcing."""

    def __init__(
        self, vocab: int, embedding: int = 128, hidden: int = 256, refine: int = 128
    ) -> None:
        super().__init__()
        self.encoder = Encoder(vocab, embedding, hidden)
        self.decoder = Decoder(vocab, embedding, hidden, refine)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        logits, _, _ = self.decoder(tgt_in, self.encoder(src))
        return logits


def build(data: Data, options: dict) -> nn.Module:
    """The encoder-decoder sized by the vocabulary and the model options."""
    return Seq2Seq(
        data.info["vocab_size"], options["embedding"], options["hidden"], options["refine"]
    )


def greedy_decode(model: Seq2Seq, src: torch.Tensor, steps: int) -> list[list[int]]:
    """Greedy translations of a batch: token ids up to (not including) ``<eos>``, at most
    ``steps`` tokens each. Call under ``torch.no_grad()``."""
    state = model.encoder(src)
    refine_state = None
    token = torch.full((len(src), 1), SOS, dtype=torch.long, device=src.device)
    done = torch.zeros(len(src), dtype=torch.bool, device=src.device)
    out = []
    for _ in range(steps):
        logits, state, refine_state = model.decoder(token, state, refine_state)
        token = logits[:, -1].argmax(-1, keepdim=True)
        out.append(token)
        done |= token.squeeze(1) == EOS
        if bool(done.all()):
            break
    ids = torch.cat(out, 1).cpu().tolist()
    return [row[: row.index(EOS)] if EOS in row else row for row in ids]


def references(target: torch.Tensor) -> list[list[int]]:
    """The reference token ids of a ``tgt_out`` batch, up to ``<eos>``."""
    rows = target.cpu().tolist()
    return [row[: row.index(EOS)] if EOS in row else [t for t in row if t != PAD] for row in rows]


def quality(model: nn.Module, data: Data, context, batch_size: int = 128) -> dict[str, float]:
    """Token accuracy, per-token loss and perplexity on validation; greedy exact match on test."""
    metrics: dict[str, float] = {}
    scored = data.valid if data.valid is not None else data.test
    if scored is not None:
        correct = total = 0
        loss_sum = 0.0
        for i in range(0, len(scored), batch_size):
            src, tgt_in = (t[i : i + batch_size] for t in scored.inputs)
            target = scored.target[i : i + batch_size]
            logits = model(src, tgt_in).float()
            mask = target != PAD
            correct += int(((logits.argmax(-1) == target) & mask).sum())
            total += int(mask.sum())
            loss_sum += float(
                F.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]),
                    target.reshape(-1),
                    ignore_index=PAD,
                    reduction="sum",
                )
            )
        if total:
            token_loss = loss_sum / total
            metrics["token_accuracy"] = correct / total
            metrics["token_loss"] = token_loss
            metrics["perplexity"] = math.exp(min(token_loss, 700.0))
    held_out = data.test if data.test is not None else data.valid
    if held_out is not None and len(held_out):
        steps = held_out.target.shape[1]
        matches = 0
        for i in range(0, len(held_out), batch_size):
            src = held_out.inputs[0][i : i + batch_size]
            decoded = greedy_decode(model, src, steps)
            wanted = references(held_out.target[i : i + batch_size])
            matches += sum(d == w for d, w in zip(decoded, wanted, strict=True))
        metrics["exact_match"] = matches / len(held_out)
    return metrics


@benchkit.hookimpl
def benchkit_register_datasets(register):
    """The embedded synthetic corpus and the loader for real parallel text."""
    register(
        "synthetic_translation",
        synthetic_translation,
        options=dict(SYNTHETIC_OPTIONS),
        description="seeded synthetic English → invented language, word order changed "
        "(no download)",
    )
    register(
        "parallel_text",
        parallel_text,
        options=dict(PARALLEL_OPTIONS),
        description="parallel sentences from a JSON-lines file (Multi30k en/de) or two "
        "aligned text files",
    )


@benchkit.hookimpl
def benchkit_register_models(register):
    """The encoder-decoder with its recipe per dataset."""
    recipe = {
        "loss": "cross_entropy",
        "ignore_index": PAD,
        "optimizer": "adam",
        "lr": 1e-3,
        "batch_size": 64,
        "shuffle": True,
    }
    register(
        "lstm_seq2seq",
        build,
        datasets={
            "synthetic_translation": Recipe(epochs=6, **recipe),
            "parallel_text": Recipe(epochs=3, **recipe),
        },
        evaluate=quality,
        metrics={
            "token_accuracy": Metric(better="higher", description="validation token accuracy"),
            "token_loss": Metric(better="lower", description="validation loss per token"),
            "perplexity": Metric(better="lower", description="validation perplexity"),
            "exact_match": Metric(
                better="higher", description="test sentences greedy decoding gets exactly right"
            ),
        },
        options={"embedding": 128, "hidden": 256, "refine": 128},
        description="LSTM encoder-decoder (128/256) + RNN refinement, teacher forcing",
    )
