"""The ``lstm_seq2seq`` plugin: tokens and vocabulary, the teacher-forcing layout, the synthetic
corpus, the file loaders' errors, the model's structure, greedy decoding and a training smoke.
Factories are called directly, without the runner."""

from __future__ import annotations

import json

import benchkit_plugins.lstm_seq2seq as s2s
import pytest
import torch
from torch import nn

from benchkit import Data
from benchkit.errors import BenchkitError
from benchkit.registry import PluginHost, PluginInfo
from benchkit.testing import check_plugin

SMALL = {"embedding": 16, "hidden": 32, "refine": 16}
DEFAULT_SIZES = {"embedding": 128, "hidden": 256, "refine": 128}
PAIRS = [
    ("The cat sleeps", "Die Katze schläft"),
    ("the dog runs fast", "der Hund läuft schnell"),
    ("A cat runs", "eine Katze läuft"),
    ("the bird sings", "der Vogel singt"),
    ("a dog sleeps", "ein Hund schläft"),
    ("the zebra sings", "das Zebra singt"),  # test pair: zebra / zebra / das never in train
]


def synthetic(seed: int = 0, **options) -> Data:
    torch.manual_seed(seed)
    return s2s.synthetic_translation({**s2s.SYNTHETIC_OPTIONS, **options})


def write_jsonl(path, records):
    """One JSON object per line; strings are written as they are (for broken lines)."""
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records),
        encoding="utf-8",
    )
    return path


def parallel(**options) -> Data:
    return s2s.parallel_text({**s2s.PARALLEL_OPTIONS, **options})


def words(ids, vocab) -> list[str]:
    return [vocab[i] for i in ids]


def test_registration_goes_through_the_registry():
    host = PluginHost()
    host.add(s2s, PluginInfo(name="lstm_seq2seq"))
    registry = host.collect()
    assert not registry.failures()
    assert registry.names("dataset") == ["parallel_text", "synthetic_translation"]
    model = registry.get("model", "lstm_seq2seq")
    assert model.options == DEFAULT_SIZES
    for recipe in model.datasets.values():
        assert (recipe.loss, recipe.ignore_index, recipe.optimizer, recipe.lr) == (
            "cross_entropy",
            0,
            "adam",
            1e-3,
        )
        assert (recipe.batch_size, recipe.shuffle) == (64, True)
    assert model.datasets["parallel_text"].epochs == 3


def test_vocabulary_comes_from_training_pairs_only(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", [{"en": en, "de": de} for en, de in PAIRS])
    data = parallel(path=str(path), valid_fraction=0.0, test_fraction=0.2)
    vocab = data.info["vocab"]
    assert vocab[:4] == ["<pad>", "<sos>", "<eos>", "<unk>"]
    assert data.info["vocab_size"] == len(vocab)
    assert len(data.train) == 5 and len(data.test) == 1 and data.valid is None
    assert "zebra" not in vocab and "das" not in vocab
    assert {"cat", "katze", "schläft", "the", "der"} <= set(vocab)  # both sides, lower-cased
    src = data.test.inputs[0]
    assert words(src[0, :3], vocab) == ["the", "<unk>", "sings"]
    assert words(data.test.target[0, :4], vocab) == ["<unk>", "<unk>", "singt", "<eos>"]
    assert vocab.index("<unk>") == s2s.UNK == 3


def test_eos_follows_the_last_real_token_and_tgt_in_is_shifted(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", [{"en": en, "de": de} for en, de in PAIRS])
    data = parallel(path=str(path), valid_fraction=0.0, test_fraction=0.2)
    src, tgt_in = data.train.inputs
    tgt_out = data.train.target
    assert src.dtype == tgt_in.dtype == tgt_out.dtype == torch.int64
    assert src.shape == (5, 20) and tgt_in.shape == tgt_out.shape == (5, 21)
    for row, (_, de) in enumerate(PAIRS[:5]):
        n = len(de.split())
        assert tgt_in[row, 0] == s2s.SOS
        assert torch.equal(tgt_in[row, 1 : n + 1], tgt_out[row, :n])  # teacher forcing shift
        assert tgt_out[row, n] == s2s.EOS  # right after the last real token
        assert (tgt_out[row, n + 1 :] == s2s.PAD).all() and (tgt_in[row, n + 1 :] == s2s.PAD).all()
        assert (tgt_out[row] == s2s.EOS).sum() == 1
    assert words(tgt_out[1, :5], data.info["vocab"]) == ["der", "hund", "läuft", "schnell", "<eos>"]


def test_long_sentences_are_cut_to_max_len():
    index = {w: i + 4 for i, w in enumerate("abcdefghijklmnopqrstuvwxyz")}
    long = " ".join("abcdefghijklmnopqrstuvwxy")  # 25 tokens
    split = s2s.make_split([(long, long)], index, 20)
    src, tgt_in = split.inputs
    assert (src[0] != s2s.PAD).all()  # 20 real tokens, no padding
    assert tgt_in[0, 0] == s2s.SOS and tgt_in[0, 20] == index["t"]
    assert split.target[0, 19] == index["t"] and split.target[0, 20] == s2s.EOS


def test_synthetic_corpus_is_seeded_and_reorders():
    a, b, c = synthetic(0), synthetic(0), synthetic(1)
    assert torch.equal(a.train.inputs[0], b.train.inputs[0])
    assert torch.equal(a.test.target, b.test.target)
    assert a.info["vocab"] == b.info["vocab"]
    assert not torch.equal(a.train.inputs[0], c.train.inputs[0])
    assert a.info["lexicon"] == c.info["lexicon"]  # the invented language is fixed

    opts = s2s.SYNTHETIC_OPTIONS
    assert len(a.train) + len(a.valid) + len(a.test) == opts["pairs"]
    assert len(a.valid) == len(a.test) == round(opts["pairs"] * 0.1)
    lexicon, vocab = a.info["lexicon"], a.info["vocab"]
    sources = set()
    for src, tgt in zip(a.train.inputs[0], a.train.target, strict=True):
        source = [w for w in words(src, vocab) if w != "<pad>"]
        target = words(tgt, vocab)
        target = target[: target.index("<eos>")]
        sources.add(" ".join(source))
        assert sorted(target) == sorted(lexicon[w] for w in source)  # word for word
        verb = next(w for w in source if w in s2s.VERBS)
        assert target[-1] == lexicon[verb]  # verb-final
        assert target != [lexicon[w] for w in source]  # never a plain copy
        for i, w in enumerate(source):
            if w in s2s.ADJECTIVES:  # before its noun in the source, after it in the target
                assert source[i + 1] in s2s.NOUNS
        nouns = {lexicon[w] for w in s2s.NOUNS}
        for i, w in enumerate(target):
            if w in {lexicon[a] for a in s2s.ADJECTIVES}:
                assert target[i - 1] in nouns
    assert len(sources) == len(a.train)  # distinct pairs
    assert max(len(s.split()) for s in sources) <= 12


def test_synthetic_options_are_checked():
    with pytest.raises(BenchkitError, match="nouns must be between 1 and"):
        synthetic(nouns=1000)
    with pytest.raises(BenchkitError, match="made only"):
        synthetic(pairs=500, nouns=1, verbs=1, adjectives=1)  # 400 exist


def test_jsonl_loader_reads_fields(tmp_path):
    records = [{"src": en, "tgt": de, "id": i} for i, (en, de) in enumerate(PAIRS * 4)]
    path = write_jsonl(tmp_path / "multi30k.jsonl", [*records[:3], "", *records[3:]])
    data = parallel(path=str(path), source_field="src", target_field="tgt")
    assert (len(data.train), len(data.valid), len(data.test)) == (20, 2, 2)
    assert data.info["max_len"] == 20


def test_jsonl_bad_line_names_the_line(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"en": "a", "de": "b"}, '{"en": "a", "de": '])
    with pytest.raises(BenchkitError, match=r"bad\.jsonl: line 2 is not valid JSON"):
        parallel(path=str(path))


def test_jsonl_missing_field(tmp_path):
    path = write_jsonl(tmp_path / "fields.jsonl", [{"en": "a", "de": "b"}, {"en": "a", "fr": "b"}])
    with pytest.raises(
        BenchkitError,
        match=r"fields\.jsonl: line 2 has no field 'de' "
        r"\(fields: 'en', 'fr'\)",
    ):
        parallel(path=str(path))


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(BenchkitError, match=r"empty\.jsonl: the file is empty"):
        parallel(path=str(empty))
    with pytest.raises(BenchkitError, match=r"gone\.jsonl: no such file"):
        parallel(path=str(tmp_path / "gone.jsonl"))
    with pytest.raises(BenchkitError, match="no data"):
        parallel()


def test_aligned_text_files(tmp_path):
    en, de = tmp_path / "train.en", tmp_path / "train.de"
    en.write_text("".join(f"{s}\n" for s, _ in PAIRS * 2), encoding="utf-8")
    de.write_text("".join(f"{t}\n" for _, t in PAIRS * 2), encoding="utf-8")
    data = parallel(source_path=str(en), target_path=str(de), valid_fraction=0.1, test_fraction=0.1)
    assert (len(data.train), len(data.valid), len(data.test)) == (10, 1, 1)
    assert words(data.train.inputs[0][1, :4], data.info["vocab"]) == ["the", "dog", "runs", "fast"]
    with pytest.raises(BenchkitError, match="not both"):
        parallel(path=str(en), source_path=str(en), target_path=str(de))
    with pytest.raises(BenchkitError, match="source_path and target_path go together"):
        parallel(source_path=str(en))


def test_max_pairs_and_min_freq(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", [{"en": en, "de": de} for en, de in PAIRS * 3])
    data = parallel(path=str(path), max_pairs=10, min_freq=2, valid_fraction=0.1, test_fraction=0.1)
    assert (len(data.train), len(data.valid), len(data.test)) == (8, 1, 1)
    vocab = data.info["vocab"]
    # the 8 training pairs hold "bird", "vogel", "das" once and "the", "cat", "fast" twice;
    # "zebra" is on both sides of one pair: one vocabulary, so it counts twice
    assert {"the", "cat", "katze", "fast", "zebra"} <= set(vocab)
    assert not {"bird", "vogel", "das"} & set(vocab)


def test_aligned_files_with_different_line_counts(tmp_path):
    en, de = tmp_path / "a.en", tmp_path / "a.de"
    en.write_text("one\ntwo\nthree\n")
    de.write_text("eins\nzwei\n")
    with pytest.raises(BenchkitError, match=r"a\.en has 3 lines but .*a\.de has 2"):
        parallel(source_path=str(en), target_path=str(de))


def test_model_structure_and_shapes():
    data = synthetic(0, pairs=100)
    torch.manual_seed(0)
    model = s2s.build(data, DEFAULT_SIZES)
    vocab = data.info["vocab_size"]
    enc, dec = model.encoder, model.decoder
    assert (enc.embedding.num_embeddings, enc.embedding.embedding_dim) == (vocab, 128)
    assert isinstance(enc.lstm, nn.LSTM) and (enc.lstm.input_size, enc.lstm.hidden_size) == (
        128,
        256,
    )
    assert isinstance(dec.lstm, nn.LSTM) and (dec.lstm.input_size, dec.lstm.hidden_size) == (
        128,
        256,
    )
    assert isinstance(dec.refine, nn.RNN) and (dec.refine.input_size, dec.refine.hidden_size) == (
        256,
        128,
    )
    assert (dec.out.in_features, dec.out.out_features) == (128, vocab)
    src, tgt_in = (t[:5] for t in data.train.inputs)
    assert model(src, tgt_in).shape == (5, 21, vocab)


def test_encoder_ignores_padding():
    torch.manual_seed(0)
    encoder = s2s.Encoder(20, 8, 16)
    short = torch.tensor([[5, 6, 7, 0, 0, 0]])
    h, c = encoder(short)
    h_plain, c_plain = encoder.lstm(encoder.embedding(short[:, :3]))[1]
    assert torch.allclose(h, h_plain) and torch.allclose(c, c_plain)


def test_greedy_decoding_matches_teacher_forcing():
    data = synthetic(0, pairs=100)
    torch.manual_seed(0)
    model = s2s.build(data, SMALL).eval()
    src = data.test.inputs[0]
    with torch.no_grad():
        decoded = s2s.greedy_decode(model, src, 21)
        assert len(decoded) == len(src)
        for seq in decoded:
            assert all(isinstance(t, int) for t in seq)
            assert s2s.EOS not in seq and len(seq) <= 21
        # feeding the greedy tokens back by teacher forcing picks the same tokens again
        for row, seq in enumerate(decoded):
            tgt_in = torch.tensor([[s2s.SOS, *seq]])
            again = model(src[row : row + 1], tgt_in).argmax(-1)[0].tolist()
            assert again[: len(seq)] == seq
            if len(seq) < 21:
                assert again[len(seq)] == s2s.EOS


class _Oracle(nn.Module):
    """Knows the reference of every pair of one split; quacks like ``Seq2Seq`` for ``quality``
    (teacher-forced ``forward``) and ``greedy_decode`` (``encoder`` and step-wise ``decoder``)."""

    def __init__(self, split, vocab: int) -> None:
        super().__init__()
        self.rows = {tuple(src.tolist()): i for i, src in enumerate(split.inputs[0])}
        self.target, self.vocab = split.target, vocab

    def _logits(self, target):
        return nn.functional.one_hot(target, self.vocab).float() * 50

    def encoder(self, src):
        return torch.tensor([self.rows[tuple(row.tolist())] for row in src])

    def decoder(self, token, rows, step):
        step = step or 0
        return self._logits(self.target[rows, step : step + 1]), rows, step + 1

    def forward(self, src, tgt_in):
        return self._logits(self.target[self.encoder(src)])


def test_quality_metrics(tmp_path):
    data = synthetic(0, pairs=100)
    torch.manual_seed(0)
    model = s2s.build(data, SMALL).eval()
    with torch.no_grad():
        metrics = s2s.quality(model, data, None, batch_size=7)
    assert set(metrics) == {"token_accuracy", "token_loss", "perplexity", "exact_match"}
    assert 0 <= metrics["token_accuracy"] <= 1 and 0 <= metrics["exact_match"] <= 1
    assert metrics["perplexity"] == pytest.approx(torch.tensor(metrics["token_loss"]).exp().item())
    assert metrics["token_loss"] == pytest.approx(
        torch.log(torch.tensor(float(data.info["vocab_size"]))).item(), rel=0.1
    )  # untrained: near uniform

    oracle = _Oracle(data.test, data.info["vocab_size"])
    perfect = s2s.quality(oracle, Data(train=data.train, test=data.test), None)
    assert perfect["token_accuracy"] == 1.0 and perfect["exact_match"] == 1.0
    assert perfect["token_loss"] < 1e-6


def test_exact_match_references_stop_at_eos():
    target = torch.tensor([[7, 8, s2s.EOS, 0], [9, s2s.EOS, 0, 0]])
    assert s2s.references(target) == [[7, 8], [9]]


def test_a_few_adam_steps_lower_the_loss():
    data = synthetic(0, pairs=200)
    torch.manual_seed(0)
    model = s2s.build(data, SMALL)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss(ignore_index=s2s.PAD)
    src, tgt_in = data.train.inputs
    target = data.train.target

    def loss_now():
        logits = model(src, tgt_in)
        return loss_fn(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))

    with torch.no_grad():
        before = float(loss_now())
    for _ in range(10):
        for i in range(0, len(src), 64):
            logits = model(src[i : i + 64], tgt_in[i : i + 64])
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]), target[i : i + 64].reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        after = float(loss_now())
    assert after < before - 1.0


def test_the_plugin_passes_the_author_checks_through_the_runner(tmp_path):
    # The same helper a third-party author uses: load the plugin alone, run each dataset.
    pairs = [
        {"en": f"the cat sees {n} dogs", "de": f"die katze sieht {n} hunde"} for n in range(40)
    ]
    path = write_jsonl(tmp_path / "pairs.jsonl", pairs)
    results = check_plugin(
        s2s,
        epochs=2,
        options={
            "parallel_text": {"path": str(path)},
            "synthetic_translation": {"pairs": 200},
        },
    )
    assert sorted(r.dataset for r in results) == ["parallel_text", "synthetic_translation"]
    for result in results:
        assert {"token_accuracy", "perplexity", "exact_match"} <= set(result.metrics)
        assert len(result.valid_curve) == 2  # the per-epoch validation loss is in the curve
