# The README's commands. `make rehearse` and `make test` set up what they need first.
.PHONY: setup rehearse test lint unit build deploy-dev deploy-prod clean

setup:
	@scripts/setup.sh

rehearse: setup
	.venv/bin/redis-migration rehearse --workdir rehearsal-output

# `make build` runs every check and ends with `sam build` (into .aws-sam/build).
# Everything CI runs: every static check, then the whole suite. 4 workers on 2 cores: a test spends
# much of its time waiting on redis-server, the sandbox's processes and the workflow's thread, so
# 2 workers left the cores idle (measured on 2 cores, same suite: 526 s with 2 workers, 395 s with 4).
# `setup.sh --sam` installs the project and the SAM CLI at the same time.
test:
	@scripts/setup.sh --sam
	scripts/lint.sh
	.venv/bin/python -m pytest -n 4 -p no:logging --durations=10

lint:
	@scripts/setup.sh --sam
	scripts/lint.sh

unit: setup
	.venv/bin/python -m pytest tests/unit -n 2

build:
	@scripts/setup.sh --sam
	scripts/lint.sh

deploy-dev: build
	.venv-sam/bin/sam deploy --template-file .aws-sam/build/template.yaml --config-env dev

deploy-prod: build
	.venv-sam/bin/sam deploy --template-file .aws-sam/build/template.yaml --config-env prod

clean:
	rm -rf .aws-sam rehearsal-output .pytest_cache .mypy_cache .ruff_cache
