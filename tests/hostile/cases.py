# ruff: noqa: E501  (a table of requests: one case a line reads best)
"""The hostile and malformed requests, as data: what is sent, and what a user or attacker must see.

`expect` is the set of acceptable statuses; `param`, when given, must appear in the error's `param`
(the field the error names). Every case is also held to the invariants in test_hostile.py: no 5xx,
OpenAI's error shape, the server still answers, nothing written outside the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MODEL = "tiny-llama"
BASE_PATH = "/root/.cache/tuneforge/models/smollm2-135m-instruct"  # the shape of a real server path
DEEP = "[" * 60_000 + "]" * 60_000
HUGE_INT = "9" * 5_000
TRAIN = "{training_file}"  # filled in with the uploaded file's id


@dataclass
class Case:
    id: str
    method: str
    path: str
    expect: tuple[int, ...]
    param: str | None = None
    json: object = None
    content: bytes | str | None = None
    data: dict | None = None
    files: dict | None = None
    headers: dict = field(default_factory=dict)
    params: dict | None = None
    root: bool = False  # path is from the server root, not /v1


def _chat(**fields) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, **fields}


def _completion(**fields) -> dict:
    return {"model": MODEL, "prompt": "hi", "max_tokens": 2, **fields}


def _job(**fields) -> dict:
    return {"model": MODEL, "training_file": TRAIN, **fields}


def _post(id: str, path: str, body, expect=(400,), param=None) -> Case:
    return Case(id, "POST", path, expect, param, json=body)


def _raw(id: str, path: str, text: str, expect=(400,)) -> Case:
    return Case(id, "POST", path, expect, content=text, headers={"Content-Type": "application/json"})


GOOD_ROW = b'{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}\n'


def _upload(
    id: str,
    expect=(400,),
    param=None,
    *,
    filename="a.jsonl",
    body=GOOD_ROW,
    purpose="fine-tune",
    extra: dict | None = None,
    headers: dict | None = None,
) -> Case:
    return Case(
        id,
        "POST",
        "/files",
        expect,
        param,
        data={"purpose": purpose, **(extra or {})},
        files={"file": (filename, body)},
        headers=headers or {},
    )


UPLOADS = [
    Case("upload-no-body", "POST", "/files", (400,)),
    Case("upload-json-body", "POST", "/files", (400,), json={"file": "x", "purpose": "fine-tune"}),
    Case(
        "upload-no-file-part",
        "POST",
        "/files",
        (400,),
        "file",
        data={"purpose": "fine-tune"},
        files={"other": ("a.jsonl", GOOD_ROW)},
    ),
    Case("upload-no-purpose", "POST", "/files", (400,), "purpose", files={"file": ("a.jsonl", GOOD_ROW)}),
    _upload("upload-bad-purpose", param="purpose", purpose="evil"),
    _upload("upload-huge-purpose", purpose="x" * 100_000),
    _upload("upload-300-fields", extra={f"f{i}": "x" for i in range(300)}),
    _upload("upload-traversal-name", (200, 400), filename="../../../../tmp/evil.jsonl"),
    _upload("upload-absolute-name", (200, 400), filename="/etc/cron.d/evil.jsonl"),
    _upload("upload-nul-name", (200, 400), filename="a\x00b.jsonl"),
    _upload("upload-10kb-name", (200, 400), filename="a" * 10_000 + ".jsonl"),
    _upload("upload-rtl-name", (200, 400), filename="\u202egnp.jsonl"),
    _upload("upload-binary-garbage", (200, 400), body=bytes(range(256)) * 64),
    _upload("upload-empty-file", (200, 400), body=b""),
    _upload(
        "upload-bad-expiry-anchor",
        param="expires_after",
        extra={"expires_after[anchor]": "bogus", "expires_after[seconds]": "3600"},
    ),
    _upload(
        "upload-negative-expiry",
        param="expires_after",
        extra={"expires_after[anchor]": "created_at", "expires_after[seconds]": "-5"},
    ),
    _upload(
        "upload-huge-expiry",
        param="expires_after",
        extra={"expires_after[anchor]": "created_at", "expires_after[seconds]": "1" + "0" * 40},
    ),
    Case(
        "upload-bad-boundary",
        "POST",
        "/files",
        (400,),
        content=b"--x\r\nnonsense",
        headers={"Content-Type": "multipart/form-data; boundary=y"},
    ),
    Case(
        "upload-no-boundary",
        "POST",
        "/files",
        (400,),
        content=b"abc",
        headers={"Content-Type": "multipart/form-data"},
    ),
    Case(
        "upload-truncated",
        "POST",
        "/files",
        (400,),
        content=b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n\r\nabc',
        headers={"Content-Type": "multipart/form-data; boundary=B"},
    ),
    Case(
        "upload-two-files",
        "POST",
        "/files",
        (400,),
        "file",
        content=(
            b'--B\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'
            b'--B\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nx\r\n'
            b'--B\r\nContent-Disposition: form-data; name="file"; filename="b"\r\n\r\ny\r\n--B--\r\n'
        ),
        headers={"Content-Type": "multipart/form-data; boundary=B"},
    ),
    _upload("upload-cross-site", (403,), headers={"Origin": "http://evil.example"}),
    _upload("upload-null-origin", (403,), headers={"Origin": "null"}),
    _upload("upload-rebinding-host", (400,), headers={"Host": "attacker.example"}),
    Case(
        "validate-hub-id-model",
        "POST",
        "/tuneforge/validate",
        (400, 404),
        "model",
        data={"model": "someorg/some-model"},
        files={"file": ("a.jsonl", GOOD_ROW)},
    ),
    Case(
        "validate-path-model",
        "POST",
        "/tuneforge/validate",
        (400, 404),
        "model",
        data={"model": BASE_PATH},
        files={"file": ("a.jsonl", GOOD_ROW)},
    ),
    Case(
        "validate-missing-path-model",
        "POST",
        "/tuneforge/validate",
        (400, 404),
        "model",
        data={"model": "/no/such/folder"},
        files={"file": ("a.jsonl", GOOD_ROW)},
    ),
    Case(
        "validate-messages-5",
        "POST",
        "/tuneforge/validate",
        (200, 400),
        data={"model": MODEL},
        files={"file": ("a.jsonl", b'{"messages": 5}\n' * 12)},
    ),
    Case(
        "validate-deep-line",
        "POST",
        "/tuneforge/validate",
        (200, 400),
        data={"model": MODEL},
        files={"file": ("a.jsonl", DEEP.encode() + b"\n" + GOOD_ROW * 11)},
    ),
    Case(
        "validate-huge-int",
        "POST",
        "/tuneforge/validate",
        (200, 400),
        data={"model": MODEL},
        files={"file": ("a.jsonl", b'{"messages": ' + HUGE_INT.encode() + b"}\n")},
    ),
    Case(
        "validate-form-hub-id",
        "POST",
        "/tuneforge/validate",
        (400, 404),
        content="model=someorg%2Fsome-model&file_id=file-nope",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ),
    Case(
        "validate-cross-site-form",
        "POST",
        "/tuneforge/validate",
        (403,),
        content="model=someorg%2Fsome-model",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"},
    ),
]

FILES = [
    Case("file-traversal-id", "GET", "/files/..%2F..%2Fetc%2Fpasswd", (400, 404)),
    Case("file-nul-id", "GET", "/files/file-%00", (400, 404)),
    Case("file-10kb-id", "GET", "/files/file-" + "a" * 10_000, (400, 404)),
    Case("file-content-missing", "GET", "/files/file-abc/content", (404,)),
    Case("file-delete-missing", "DELETE", "/files/file-nope", (404,)),
    Case("file-emoji-id", "GET", "/files/%F0%9F%98%80", (400, 404)),
    Case("file-bad-utf8-id", "GET", "/files/%FF%FE", (400, 404)),
    Case("files-limit-negative", "GET", "/files", (400,), "limit", params={"limit": "-1"}),
    Case("files-limit-huge", "GET", "/files", (200, 400), params={"limit": "1000000000"}),
    Case("files-limit-text", "GET", "/files", (400,), "limit", params={"limit": "abc"}),
    Case("files-limit-float", "GET", "/files", (400,), "limit", params={"limit": "1e9"}),
    Case("files-after-junk", "GET", "/files", (200, 400, 404), params={"after": "'; DROP TABLE files; --"}),
    Case("files-order-bad", "GET", "/files", (400,), "order", params={"order": "sideways"}),
    Case("files-purpose-bad", "GET", "/files", (200, 400), params={"purpose": "x" * 5000}),
    Case("files-nul-query", "GET", "/files", (400,), params={"after": "a\x00b"}),
    Case("files-cross-site-read", "GET", "/files", (403,), headers={"Origin": "http://evil.example"}),
    Case(
        "files-fetch-cross-site",
        "GET",
        "/files",
        (403,),
        headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"},
    ),
    Case(
        "file-delete-cross-site",
        "DELETE",
        "/files/file-nope",
        (403,),
        headers={"Origin": "http://evil.example"},
    ),
]

JOBS = [
    _raw("job-empty-body", "/fine_tuning/jobs", ""),
    _raw("job-invalid-json", "/fine_tuning/jobs", "{not json"),
    _post("job-array-body", "/fine_tuning/jobs", [1, 2]),
    _post("job-string-body", "/fine_tuning/jobs", "x"),
    _raw("job-null-body", "/fine_tuning/jobs", "null"),
    _post("job-no-training-file", "/fine_tuning/jobs", {"model": MODEL}, param="training_file"),
    _post(
        "job-training-file-int",
        "/fine_tuning/jobs",
        {"model": MODEL, "training_file": 5},
        param="training_file",
    ),
    _post(
        "job-training-file-missing",
        "/fine_tuning/jobs",
        {"model": MODEL, "training_file": "file-nope"},
        (400, 404),
        "training_file",
    ),
    _post("job-no-model", "/fine_tuning/jobs", {"training_file": TRAIN}, param="model"),
    _post("job-model-list", "/fine_tuning/jobs", _job(model=["a"]), param="model"),
    _post("job-model-server-path", "/fine_tuning/jobs", _job(model=BASE_PATH), (400, 404), "model"),
    _post("job-model-hub-id", "/fine_tuning/jobs", _job(model="someorg/unregistered"), (400, 404), "model"),
    _post("job-model-traversal", "/fine_tuning/jobs", _job(model="../../etc/passwd"), (400, 404), "model"),
    _post("job-suffix-long", "/fine_tuning/jobs", _job(suffix="s" * 200), param="suffix"),
    _post("job-suffix-nul", "/fine_tuning/jobs", _job(suffix="a\x00b"), param="suffix"),
    _post("job-hparams-string", "/fine_tuning/jobs", _job(hyperparameters="x"), param="hyperparameters"),
    _post(
        "job-epochs-negative", "/fine_tuning/jobs", _job(hyperparameters={"n_epochs": -1}), param="n_epochs"
    ),
    _post(
        "job-epochs-huge", "/fine_tuning/jobs", _job(hyperparameters={"n_epochs": 10**9}), param="n_epochs"
    ),
    _post("job-epochs-bool", "/fine_tuning/jobs", _job(hyperparameters={"n_epochs": True}), param="n_epochs"),
    _post(
        "job-epochs-nan-string",
        "/fine_tuning/jobs",
        _job(hyperparameters={"n_epochs": "NaN"}),
        param="n_epochs",
    ),
    _post("job-batch-zero", "/fine_tuning/jobs", _job(hyperparameters={"batch_size": 0}), param="batch_size"),
    _post(
        "job-lr-negative",
        "/fine_tuning/jobs",
        _job(hyperparameters={"learning_rate_multiplier": -1}),
        param="learning_rate_multiplier",
    ),
    _raw(
        "job-lr-nan-literal",
        "/fine_tuning/jobs",
        f'{{"model": "tiny-llama", "training_file": "{TRAIN}", "hyperparameters": {{"learning_rate_multiplier": NaN}}}}',
    ),
    _raw(
        "job-lr-infinity-literal",
        "/fine_tuning/jobs",
        f'{{"model": "tiny-llama", "training_file": "{TRAIN}", "hyperparameters": {{"n_epochs": Infinity}}}}',
    ),
    _post("job-seed-2-64", "/fine_tuning/jobs", _job(seed=2**64), param="seed"),
    _post("job-seed-string", "/fine_tuning/jobs", _job(seed="x"), param="seed"),
    _post(
        "job-metadata-17-keys",
        "/fine_tuning/jobs",
        _job(metadata={f"k{i}": "v" for i in range(17)}),
        param="metadata",
    ),
    _post("job-metadata-long-value", "/fine_tuning/jobs", _job(metadata={"k": "v" * 1000}), param="metadata"),
    _post("job-metadata-int-value", "/fine_tuning/jobs", _job(metadata={"k": 5}), param="metadata"),
    _post("job-metadata-list", "/fine_tuning/jobs", _job(metadata=[]), param="metadata"),
    _post(
        "job-integrations-5000",
        "/fine_tuning/jobs",
        _job(integrations=[{"type": "wandb", "wandb": {"project": "p"}}] * 5000),
        param="integrations",
    ),
    _post("job-integrations-string", "/fine_tuning/jobs", _job(integrations="x"), param="integrations"),
    _post(
        "job-integrations-bad-item",
        "/fine_tuning/jobs",
        _job(integrations=[{"type": "wandb", "wandb": 5}]),
        param="integrations",
    ),
    _post("job-method-unknown", "/fine_tuning/jobs", _job(method={"type": "evil"}), param="method"),
    _post("job-method-int", "/fine_tuning/jobs", _job(method=5), param="method"),
    _post("job-validation-file-int", "/fine_tuning/jobs", _job(validation_file=5), param="validation_file"),
    _raw("job-deep-json", "/fine_tuning/jobs", '{"model": ' + DEEP + "}"),
    _raw(
        "job-huge-int",
        "/fine_tuning/jobs",
        f'{{"model": "tiny-llama", "training_file": "{TRAIN}", "hyperparameters": {{"n_epochs": {HUGE_INT}}}}}',
    ),
    _post(
        "job-10k-unknown-keys",
        "/fine_tuning/jobs",
        {"model": MODEL, **{f"x{i}": i for i in range(10_000)}},
        param="training_file",
    ),
    Case("job-get-missing", "GET", "/fine_tuning/jobs/ftjob-nope", (404,)),
    Case("job-get-10kb-id", "GET", "/fine_tuning/jobs/ftjob-" + "a" * 10_000, (400, 404)),
    Case("job-cancel-missing", "POST", "/fine_tuning/jobs/ftjob-nope/cancel", (404,)),
    Case("job-pause-missing", "POST", "/fine_tuning/jobs/ftjob-nope/pause", (404,)),
    Case("job-resume-missing", "POST", "/fine_tuning/jobs/ftjob-nope/resume", (404,)),
    Case("job-events-missing", "GET", "/fine_tuning/jobs/ftjob-nope/events", (404,)),
    Case(
        "job-events-limit-negative",
        "GET",
        "/fine_tuning/jobs/ftjob-nope/events",
        (400, 404),
        params={"limit": "-5"},
    ),
    Case(
        "job-checkpoints-limit-text",
        "GET",
        "/fine_tuning/jobs/ftjob-nope/checkpoints",
        (400, 404),
        params={"limit": "abc"},
    ),
    Case("jobs-limit-huge", "GET", "/fine_tuning/jobs", (200, 400), params={"limit": "100000"}),
    Case("jobs-limit-zero", "GET", "/fine_tuning/jobs", (200, 400), params={"limit": "0"}),
    Case("jobs-after-junk", "GET", "/fine_tuning/jobs", (200, 400, 404), params={"after": "%%%"}),
    Case("jobs-metadata-filter", "GET", "/fine_tuning/jobs", (200, 400), params={"metadata[k]": "v"}),
    Case("jobs-after-nul", "GET", "/fine_tuning/jobs", (400,), params={"after": "\x00"}),
    Case(
        "job-cancel-cross-site",
        "POST",
        "/fine_tuning/jobs/ftjob-nope/cancel",
        (403,),
        headers={"Origin": "http://evil.example"},
    ),
    Case(
        "job-create-cross-site",
        "POST",
        "/fine_tuning/jobs",
        (403,),
        json=_job(),
        headers={"Origin": "https://evil.example"},
    ),
    Case(
        "job-create-rebinding",
        "POST",
        "/fine_tuning/jobs",
        (400,),
        json=_job(),
        headers={"Host": "attacker.example:8000"},
    ),
]

LEGACY = [
    _post("legacy-empty", "/fine-tunes", {}, param="training_file"),
    _post("legacy-training-file-int", "/fine-tunes", {"training_file": 5}, param="training_file"),
    _post("legacy-epochs-text", "/fine-tunes", {"training_file": TRAIN, "n_epochs": "x"}, param="n_epochs"),
    _post(
        "legacy-model-path", "/fine-tunes", {"training_file": TRAIN, "model": BASE_PATH}, (400, 404), "model"
    ),
    _post("legacy-model-hub", "/fine-tunes", {"training_file": TRAIN, "model": "org/x"}, (400, 404), "model"),
    _post(
        "legacy-prompt-loss-text",
        "/fine-tunes",
        {"training_file": TRAIN, "prompt_loss_weight": "x"},
        param="prompt_loss_weight",
    ),
    _post(
        "legacy-classes-negative",
        "/fine-tunes",
        {"training_file": TRAIN, "classification_n_classes": -3},
        (400,),
        "classification_n_classes",
    ),
    _post("legacy-suffix-long", "/fine-tunes", {"training_file": TRAIN, "suffix": "s" * 100}, param="suffix"),
    _post(
        "legacy-lr-nan-string",
        "/fine-tunes",
        {"training_file": TRAIN, "learning_rate_multiplier": "nan"},
        param="learning_rate_multiplier",
    ),
    Case("legacy-get-missing", "GET", "/fine-tunes/ft-nope", (404,)),
    Case("legacy-events-missing", "GET", "/fine-tunes/ft-nope/events", (404,)),
    Case(
        "legacy-events-stream-missing", "GET", "/fine-tunes/ft-nope/events", (404,), params={"stream": "true"}
    ),
    Case(
        "legacy-events-stream-junk",
        "GET",
        "/fine-tunes/ft-nope/events",
        (400, 404),
        params={"stream": "maybe"},
    ),
    Case("legacy-cancel-missing", "POST", "/fine-tunes/ft-nope/cancel", (404,)),
]

MODELS = [
    Case("model-traversal", "GET", "/models/..%2F..%2Fetc%2Fpasswd", (404,)),
    Case("model-server-path", "GET", "/models/%2Froot%2F.cache%2Ftuneforge", (404,)),
    Case("model-delete-base", "DELETE", "/models/" + MODEL, (400, 403, 404)),
    Case("model-delete-alias", "DELETE", "/models/gpt-3.5-turbo", (400, 403, 404)),
    Case("model-delete-missing-ft", "DELETE", "/models/ft:tiny-llama:personal:x:abcdefgh", (404,)),
    Case("model-get-missing-ft", "GET", "/models/ft:x:y:z", (404,)),
    Case("model-get-10kb", "GET", "/models/" + "m" * 10_000, (400, 404)),
    Case(
        "model-delete-cross-site",
        "DELETE",
        "/models/ft:x:y:z",
        (403,),
        headers={"Origin": "http://evil.example"},
    ),
]


def _nested_schema(depth: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}, "required": ["a"]}
    return schema


CHAT = "/chat/completions"
CHAT_CASES = [
    _post("chat-empty", CHAT, {}, param="model"),
    _post("chat-messages-string", CHAT, {"model": MODEL, "messages": "hi"}, param="messages"),
    _post("chat-messages-empty", CHAT, {"model": MODEL, "messages": []}, param="messages"),
    _post("chat-message-int", CHAT, {"model": MODEL, "messages": [5]}, param="messages"),
    _post("chat-role-list", CHAT, _chat(messages=[{"role": ["user"], "content": "hi"}]), param="messages"),
    _post("chat-role-object", CHAT, _chat(messages=[{"role": {"x": 1}, "content": "hi"}]), param="messages"),
    _post("chat-role-unknown", CHAT, _chat(messages=[{"role": "wizard", "content": "hi"}]), param="messages"),
    _post("chat-content-int", CHAT, _chat(messages=[{"role": "user", "content": 5}]), param="messages"),
    _post(
        "chat-content-image",
        CHAT,
        _chat(
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}],
                }
            ]
        ),
        param="messages",
    ),
    _post(
        "chat-content-part-int", CHAT, _chat(messages=[{"role": "user", "content": [5]}]), param="messages"
    ),
    _post("chat-no-model", CHAT, {"messages": [{"role": "user", "content": "hi"}]}, param="model"),
    _post("chat-model-path", CHAT, _chat(model=BASE_PATH), (404,), "model"),
    _post("chat-model-hub", CHAT, _chat(model="HuggingFaceTB/SmolLM2-135M-Instruct"), (404,), "model"),
    _post("chat-model-int", CHAT, _chat(model=5), param="model"),
    _post("chat-model-traversal", CHAT, _chat(model="../../../etc/passwd"), (404,), "model"),
    _post("chat-n-zero", CHAT, _chat(n=0), param="n"),
    _post("chat-n-huge", CHAT, _chat(n=100_000), param="n"),
    _post("chat-max-tokens-negative", CHAT, _chat(max_tokens=-1), param="max_tokens"),
    _post("chat-max-tokens-text", CHAT, _chat(max_tokens="x"), param="max_tokens"),
    _post("chat-max-tokens-float", CHAT, _chat(max_tokens=2.5), param="max_tokens"),
    _post(
        "chat-max-completion-negative", CHAT, _chat(max_completion_tokens=-5), param="max_completion_tokens"
    ),
    _post("chat-temperature-negative", CHAT, _chat(temperature=-1), param="temperature"),
    _post("chat-temperature-5", CHAT, _chat(temperature=5), param="temperature"),
    _raw(
        "chat-temperature-nan",
        CHAT,
        '{"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
    ),
    _post("chat-top-p-2", CHAT, _chat(top_p=2), param="top_p"),
    _post("chat-logit-bias-superscript", CHAT, _chat(logit_bias={"²": 5}), param="logit_bias"),
    _post("chat-logit-bias-word", CHAT, _chat(logit_bias={"abc": 1}), param="logit_bias"),
    _post("chat-logit-bias-500", CHAT, _chat(logit_bias={"1": 500}), param="logit_bias"),
    _post("chat-logit-bias-oov", CHAT, _chat(logit_bias={"99999999": 1}), param="logit_bias"),
    _post("chat-logit-bias-list", CHAT, _chat(logit_bias=[1, 2]), param="logit_bias"),
    _post("chat-seed-2-64", CHAT, _chat(seed=2**64), param="seed"),
    _post("chat-seed-minus-huge", CHAT, _chat(seed=-(2**70)), param="seed"),
    _post("chat-stop-5", CHAT, _chat(stop=["a", "b", "c", "d", "e"]), param="stop"),
    _post("chat-stop-ints", CHAT, _chat(stop=[5]), param="stop"),
    _post("chat-stop-object", CHAT, _chat(stop={"a": 1}), param="stop"),
    _post("chat-format-unknown", CHAT, _chat(response_format={"type": "evil"}), param="response_format"),
    _post(
        "chat-schema-int",
        CHAT,
        _chat(response_format={"type": "json_schema", "json_schema": 5}),
        param="response_format",
    ),
    _post(
        "chat-schema-bad-type",
        CHAT,
        _chat(
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "wizard"}},
            }
        ),
        param="response_format",
    ),
    _post(
        "chat-schema-bad-ref",
        CHAT,
        _chat(
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"$ref": "#/definitions/nope"}},
            }
        ),
        param="response_format",
    ),
    _post(
        "chat-schema-remote-ref",
        CHAT,
        _chat(
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"$ref": "http://127.0.0.1:1/schema.json"}},
            }
        ),
        (200, 400),
        "response_format",
    ),
    _post(
        "chat-schema-deep",
        CHAT,
        _chat(
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": _nested_schema(200)},
            }
        ),
        param="response_format",
    ),
    _post(
        "chat-tools-500",
        CHAT,
        _chat(tools=[{"type": "function", "function": {"name": f"f{i}"}} for i in range(500)]),
        param="tools",
    ),
    _post("chat-tools-string", CHAT, _chat(tools="x"), param="tools"),
    _post("chat-tools-bad-item", CHAT, _chat(tools=[{"type": "function", "function": 5}]), param="tools"),
    _post(
        "chat-tool-choice-unknown",
        CHAT,
        _chat(tool_choice={"type": "function", "function": {"name": "nope"}}),
        param="tool_choice",
    ),
    _post("chat-functions-bad", CHAT, _chat(functions=[5]), param="functions"),
    _post("chat-top-logprobs-50", CHAT, _chat(logprobs=True, top_logprobs=50), param="top_logprobs"),
    _post("chat-logprobs-text", CHAT, _chat(logprobs="x"), param="logprobs"),
    _post("chat-stream-text", CHAT, _chat(stream="yes"), param="stream"),
    _post("chat-presence-5", CHAT, _chat(presence_penalty=5), param="presence_penalty"),
    _post("chat-frequency-minus-3", CHAT, _chat(frequency_penalty=-3), param="frequency_penalty"),
    _post("chat-user-int", CHAT, _chat(user=5), param="user"),
    _post(
        "chat-messages-100k",
        CHAT,
        _chat(messages=[{"role": "user", "content": "a"}] * 100_000),
        param="messages",
    ),
    _raw("chat-deep-json", CHAT, '{"model": "tiny-llama", "messages": ' + DEEP + "}"),
    _raw(
        "chat-huge-int",
        CHAT,
        '{"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], '
        '"max_tokens": ' + HUGE_INT + "}",
    ),
    Case(
        "chat-invalid-utf8",
        "POST",
        CHAT,
        (400,),
        headers={"Content-Type": "application/json"},
        content=b'{"model": "tiny-llama", "messages": [{"role": "user", "content": "\xff"}]}',
    ),
    _post(
        "chat-nul-content", CHAT, _chat(messages=[{"role": "user", "content": "a\x00b"}]), param="messages"
    ),
    Case("chat-cross-site", "POST", CHAT, (403,), json=_chat(), headers={"Origin": "http://evil.example"}),
    Case(
        "chat-form-post",
        "POST",
        CHAT,
        (400, 403),
        content="model=x",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"},
    ),
    Case(
        "chat-text-plain-csrf",
        "POST",
        CHAT,
        (403,),
        content='{"model": "tiny-llama"}',
        headers={"Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"},
    ),
]


COMP = "/completions"
COMPLETION_CASES = [
    _post("completion-empty", COMP, {}, param="model"),
    _post("completion-prompt-int", COMP, _completion(prompt=5), param="prompt"),
    _post("completion-prompt-negative-id", COMP, _completion(prompt=[[-1]]), param="prompt"),
    _post("completion-prompt-oov-id", COMP, _completion(prompt=[[99_999_999]]), param="prompt"),
    _post("completion-prompt-empty-ids", COMP, _completion(prompt=[[]]), (200, 400), "prompt"),
    _post("completion-prompt-mixed", COMP, _completion(prompt=["a", 5]), param="prompt"),
    _post("completion-logprobs-10", COMP, _completion(logprobs=10), param="logprobs"),
    _post("completion-logprobs-negative", COMP, _completion(logprobs=-1), param="logprobs"),
    _post("completion-echo-text", COMP, _completion(echo="yes"), param="echo"),
    _post("completion-best-of-zero", COMP, _completion(best_of=0), param="best_of"),
    _post("completion-best-of-below-n", COMP, _completion(best_of=1, n=3), param="best_of"),
    _post("completion-suffix-int", COMP, _completion(suffix=5), param="suffix"),
    _post("completion-stop-ints", COMP, _completion(stop=[1, 2]), param="stop"),
    _post("completion-max-tokens-negative", COMP, _completion(max_tokens=-1), param="max_tokens"),
    _post("completion-model-path", COMP, _completion(model=BASE_PATH), (404,), "model"),
    _post(
        "completion-model-ft-unknown",
        COMP,
        _completion(model="ft:tiny-llama:personal:x:abcdefgh"),
        (404,),
        "model",
    ),
    _post("completion-seed-2-64", COMP, _completion(seed=2**64), param="seed"),
    _post("completion-logit-bias-superscript", COMP, _completion(logit_bias={"²": 5}), param="logit_bias"),
    _post("completion-n-huge", COMP, _completion(n=10_000), param="n"),
    _post("completion-prompt-list-1m", COMP, _completion(prompt=["a"] * 1_000_000), (400, 413), "prompt"),
    Case("completion-cross-site", "POST", COMP, (403,), json=_completion(), headers={"Origin": "null"}),
]

WEB = [
    Case(
        "web-static-encoded-traversal",
        "GET",
        "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        (400, 404),
        root=True,
    ),
    Case("web-static-encoded-slash", "GET", "/static/..%2f..%2f..%2fetc%2fpasswd", (400, 404), root=True),
    Case("web-static-dir", "GET", "/static/", (404,), root=True),
    Case("web-static-missing", "GET", "/static/nope.js", (404,), root=True),
    Case("web-rebinding-index", "GET", "/", (400,), headers={"Host": "attacker.example"}, root=True),
    Case("web-unknown-v1", "GET", "/nope", (404,)),
    Case("web-trace", "TRACE", "/", (404, 405), root=True),
    Case(
        "web-preflight-evil",
        "OPTIONS",
        "/files",
        (200, 400, 403, 404, 405),
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    ),
    Case(
        "web-bearer-10kb",
        "GET",
        "/files",
        (200, 400, 401),
        headers={"Authorization": "Bearer " + "k" * 10_000},
    ),
    Case("web-basic-auth", "GET", "/files", (200, 401), headers={"Authorization": "Basic dXNlcjpwYXNz"}),
    Case("web-health-cross-site", "GET", "/health", (200, 403), headers={"Origin": "http://evil.example"}),
    Case("web-docs-framed", "GET", "/docs", (200, 404), root=True, headers={"Sec-Fetch-Dest": "iframe"}),
]

ALL_CASES = UPLOADS + FILES + JOBS + LEGACY + MODELS + CHAT_CASES + COMPLETION_CASES + WEB
