-- A history database as schema version 1 wrote it (benchkit history add at commit 2a8283e),
-- dumped with sqlite3's iterdump: the input of the migration test (test_history_migration.py).
-- One result set: single_neuron on single_point, two seeds, two criteria.
BEGIN TRANSACTION;
CREATE TABLE environments (
    fingerprint TEXT PRIMARY KEY,
    description TEXT NOT NULL
);
INSERT INTO "environments" VALUES('eb9b3209e307','{"cpu": "Intel(R) Xeon(R) Processor", "cpu_capability": "AVX512", "torch": "2.13.0+cpu", "torch_threads": "1"}');
INSERT INTO "environments" VALUES('0c4c026ddfc2','{"cpu": "Intel(R) Xeon(R) Processor", "cpu_capability": "AVX512", "device_name": "Intel(R) Xeon(R) Processor", "torch": "2.13.0+cpu", "torch_threads": "1"}');
CREATE TABLE metrics (
    run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    metric TEXT NOT NULL,
    value REAL,
    text TEXT,
    PRIMARY KEY (run, metric)
) WITHOUT ROWID;
INSERT INTO "metrics" VALUES(1,'best_loss',8.25380652713647577911e-10,NULL);
INSERT INTO "metrics" VALUES(1,'bias',7.71956562995910644531e-01,NULL);
INSERT INTO "metrics" VALUES(1,'converged_epoch',13.0,NULL);
INSERT INTO "metrics" VALUES(1,'epochs',20.0,NULL);
INSERT INTO "metrics" VALUES(1,'epochs_to[loss <= 0.01]',4.0,NULL);
INSERT INTO "metrics" VALUES(1,'final_loss',8.25380652713647577911e-10,NULL);
INSERT INTO "metrics" VALUES(1,'lr',0.1,NULL);
INSERT INTO "metrics" VALUES(1,'optimizer',NULL,'sgd');
INSERT INTO "metrics" VALUES(1,'params',2.0,NULL);
INSERT INTO "metrics" VALUES(1,'peak_memory_bytes',1658880.0,NULL);
INSERT INTO "metrics" VALUES(1,'samples_per_second',9.14671328116695440263e+03,NULL);
INSERT INTO "metrics" VALUES(1,'target_loss',1.0e-06,NULL);
INSERT INTO "metrics" VALUES(1,'time_to_target_seconds',3.35751199997957883169e-03,NULL);
INSERT INTO "metrics" VALUES(1,'train_samples',1.0,NULL);
INSERT INTO "metrics" VALUES(1,'train_seconds',3.93832700001439661718e-03,NULL);
INSERT INTO "metrics" VALUES(1,'weight',2.28026211261749267578e-01,NULL);
INSERT INTO "metrics" VALUES(2,'best_loss',3.17938031457742908969e-09,NULL);
INSERT INTO "metrics" VALUES(2,'bias',2.16623507440090179443e-02,NULL);
INSERT INTO "metrics" VALUES(2,'converged_epoch',14.0,NULL);
INSERT INTO "metrics" VALUES(2,'epochs',20.0,NULL);
INSERT INTO "metrics" VALUES(2,'epochs_to[loss <= 0.01]',5.0,NULL);
INSERT INTO "metrics" VALUES(2,'final_loss',3.17938031457742908969e-09,NULL);
INSERT INTO "metrics" VALUES(2,'lr',0.1,NULL);
INSERT INTO "metrics" VALUES(2,'optimizer',NULL,'sgd');
INSERT INTO "metrics" VALUES(2,'params',2.0,NULL);
INSERT INTO "metrics" VALUES(2,'peak_memory_bytes',0.0,NULL);
INSERT INTO "metrics" VALUES(2,'samples_per_second',2.74266865622799605253e+03,NULL);
INSERT INTO "metrics" VALUES(2,'target_loss',1.0e-06,NULL);
INSERT INTO "metrics" VALUES(2,'time_to_target_seconds',6.83304400001816247822e-03,NULL);
INSERT INTO "metrics" VALUES(2,'train_samples',1.0,NULL);
INSERT INTO "metrics" VALUES(2,'train_seconds',7.35497300001952680759e-03,NULL);
INSERT INTO "metrics" VALUES(2,'weight',9.78303790092468261718e-01,NULL);
CREATE TABLE result_sets (
    id INTEGER PRIMARY KEY,
    commit_sha TEXT NOT NULL,
    parent_sha TEXT,
    commit_time TEXT,
    dirty INTEGER NOT NULL DEFAULT 0,
    started_at TEXT NOT NULL,
    suite TEXT NOT NULL,
    suite_sha256 TEXT NOT NULL,
    kind TEXT NOT NULL,
    environment TEXT NOT NULL REFERENCES environments(fingerprint),
    finished INTEGER,
    path TEXT,
    run_json TEXT,
    added_at TEXT NOT NULL,
    UNIQUE (commit_sha, started_at, suite_sha256, environment)
);
INSERT INTO "result_sets" VALUES(1,'1234567890abcdef1234567890abcdef12345678',NULL,NULL,0,'2026-11-25T12:47:26+0000','migration','68543c0132b3ab52ef3138417cb568e3514c2f6105896206ecf1f04a92f52042','convergence','eb9b3209e307',1,'/tmp/v1gen/set','{"schema_version": 1, "kind": "convergence", "suite": {"name": "migration", "path": "suite.toml", "sha256": "68543c0132b3ab52ef3138417cb568e3514c2f6105896206ecf1f04a92f52042", "description": "", "text": "[suite]\nname = \"migration\"\n\n[matrix]\ndevices = [\"cpu\"]\nprecisions = [\"fp32\"]\nseeds = [0, 1]\n\n[[cases]]\nmodel = \"single_neuron\"\ndataset = \"single_point\"\ntarget_loss = 1e-6\ncriteria = [\"loss <= 0.01\", \"loss <= 1e-12\"]\nrecipe = { epochs = 20 }\n"}, "started_at": "2026-11-25T12:47:26+0000", "environment": {"benchkit": "0.1.0", "api_version": "1.0", "torch": "2.13.0+cpu", "torch_cuda": null, "python": "3.11.7", "python_implementation": "CPython", "os": "Linux-6.18.44-fc-v769-x86_64-with-glibc2.36", "machine": "x86_64", "cpu": "Intel(R) Xeon(R) Processor", "cpu_count": 2, "torch_threads": 1, "cpu_capability": "AVX512", "devices": {"cpu": {"available": true, "name": "Intel(R) Xeon(R) Processor", "threads": 1}}, "git": null, "command": ["benchkit", "run", "suite.toml", "--out", "set", "--threads", "1", "--quiet"], "executable": "python3"}, "plugins": {"devices": {"package": "benchkit", "version": "0.1.0", "status": "ok"}, "lstm_seq2seq": {"package": "benchkit", "version": "0.1.0", "status": "ok"}, "precisions": {"package": "benchkit", "version": "0.1.0", "status": "ok"}, "rnn": {"package": "benchkit", "version": "0.1.0", "status": "ok"}, "sine_mlp": {"package": "benchkit", "version": "0.1.0", "status": "ok"}, "single_neuron": {"package": "benchkit", "version": "0.1.0", "status": "ok"}}, "finished": true, "interrupted": false, "runs": 2, "finished_at": "2026-11-25T12:47:26+0000"}','2026-11-25T12:47:30+0000');
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    set_id INTEGER NOT NULL REFERENCES result_sets(id) ON DELETE CASCADE,
    run_id TEXT NOT NULL,
    workload TEXT NOT NULL,
    model TEXT,
    dataset TEXT,
    precision TEXT,
    device TEXT,
    seed TEXT,
    variant TEXT,
    device_name TEXT,
    status TEXT NOT NULL,
    status_detail TEXT,
    fingerprint TEXT NOT NULL REFERENCES environments(fingerprint)
);
INSERT INTO "runs" VALUES(1,1,'single_neuron/single_point/fp32/cpu/seed0','single_neuron/single_point/fp32/cpu/{"recipe": {"epochs": 20}}','single_neuron','single_point','fp32','cpu','0','{"recipe": {"epochs": 20}}','Intel(R) Xeon(R) Processor','ok','','0c4c026ddfc2');
INSERT INTO "runs" VALUES(2,1,'single_neuron/single_point/fp32/cpu/seed1','single_neuron/single_point/fp32/cpu/{"recipe": {"epochs": 20}}','single_neuron','single_point','fp32','cpu','1','{"recipe": {"epochs": 20}}','Intel(R) Xeon(R) Processor','ok','','0c4c026ddfc2');
CREATE TABLE samples (
    run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    metric TEXT NOT NULL,
    position INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (run, metric, position)
) WITHOUT ROWID;
INSERT INTO "samples" VALUES(1,'samples_per_second',0,5.94297124981177057618e+03);
INSERT INTO "samples" VALUES(1,'samples_per_second',1,7.54756854944044425778e+03);
INSERT INTO "samples" VALUES(1,'samples_per_second',2,8.40908517649159148281e+03);
INSERT INTO "samples" VALUES(1,'samples_per_second',3,8.07982870684150930162e+03);
INSERT INTO "samples" VALUES(1,'samples_per_second',4,8.93583179210455818934e+03);
INSERT INTO "samples" VALUES(1,'samples_per_second',5,8.38159736791353498098e+03);
INSERT INTO "samples" VALUES(1,'samples_per_second',6,9449.65225261578);
INSERT INTO "samples" VALUES(1,'samples_per_second',7,9.08867823309701634588e+03);
INSERT INTO "samples" VALUES(1,'samples_per_second',8,1.02201418537991921763e+04);
INSERT INTO "samples" VALUES(1,'samples_per_second',9,1.01682851101226988247e+04);
INSERT INTO "samples" VALUES(1,'samples_per_second',10,9.83110167361559251705e+03);
INSERT INTO "samples" VALUES(1,'samples_per_second',11,1.01333549605380903813e+04);
INSERT INTO "samples" VALUES(1,'samples_per_second',12,1.03864809574316532239e+04);
INSERT INTO "samples" VALUES(1,'samples_per_second',13,1.03865888363979411222e+04);
INSERT INTO "samples" VALUES(1,'samples_per_second',14,1.01512536753508575198e+04);
INSERT INTO "samples" VALUES(1,'samples_per_second',15,1.01013162005675330879e+04);
INSERT INTO "samples" VALUES(1,'samples_per_second',16,1.05517510606544947225e+04);
INSERT INTO "samples" VALUES(1,'samples_per_second',17,1.04188372611128961578e+04);
INSERT INTO "samples" VALUES(2,'samples_per_second',0,8.6157133363707216634e+03);
INSERT INTO "samples" VALUES(2,'samples_per_second',1,9.10862952065998251766e+03);
INSERT INTO "samples" VALUES(2,'samples_per_second',2,9.63205547605811443663e+03);
INSERT INTO "samples" VALUES(2,'samples_per_second',3,9.40928508467562096494e+03);
INSERT INTO "samples" VALUES(2,'samples_per_second',4,1.01183850985767257953e+04);
INSERT INTO "samples" VALUES(2,'samples_per_second',5,9785.31029558055);
INSERT INTO "samples" VALUES(2,'samples_per_second',6,9.90775876393073122016e+03);
INSERT INTO "samples" VALUES(2,'samples_per_second',7,1.02926191719355065285e+04);
INSERT INTO "samples" VALUES(2,'samples_per_second',8,9.85095504968833120089e+03);
INSERT INTO "samples" VALUES(2,'samples_per_second',9,9.96482416003934667967e+03);
INSERT INTO "samples" VALUES(2,'samples_per_second',10,2.13048904527620152292e+02);
INSERT INTO "samples" VALUES(2,'samples_per_second',11,5.52492292674772397711e+03);
INSERT INTO "samples" VALUES(2,'samples_per_second',12,7.73173956553425705331e+03);
INSERT INTO "samples" VALUES(2,'samples_per_second',13,9.11385944299749098732e+03);
INSERT INTO "samples" VALUES(2,'samples_per_second',14,9.22687974272626343016e+03);
INSERT INTO "samples" VALUES(2,'samples_per_second',15,9.91896208226807902987e+03);
INSERT INTO "samples" VALUES(2,'samples_per_second',16,9.9733710998180467866e+03);
INSERT INTO "samples" VALUES(2,'samples_per_second',17,9733.0231784284);
CREATE INDEX runs_by_set ON runs(set_id);
CREATE INDEX runs_by_workload ON runs(workload, fingerprint);
COMMIT;
PRAGMA application_id = 1651206249;
PRAGMA user_version = 1;
