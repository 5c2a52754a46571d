"""The AWS deployment: a CDK app (deploy/app.py), the container entrypoint and the diagram command."""

import os

# jsii runs the CDK in Node; Debian's Node is older than the CDK's supported list but works for synth.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")
