"""Load the knowledge base YAML and push what changed to the passage index.

manage.py kb_index [--full] [--force-files]
"""

import sys

from tqdm import tqdm

from forecasts.management.commands._cli import OneLineCommand, usage_error
from forecasts.writing.knowledge import KnowledgeError
from forecasts.writing.retrieval import RetrievalError, knowledge_index


class Command(OneLineCommand):
    help = "Load forecasts/writing/knowledge_base/*.yaml into Passage rows and index what changed since the last run."

    def add_arguments(self, parser):
        parser.add_argument("--full", action="store_true", help="push every passage again, changed or not")
        parser.add_argument(
            "--force-files", action="store_true", help="let the files overwrite passages edited in the admin"
        )

    def handle(self, *args, full: bool, force_files: bool, **options):
        bar = tqdm(total=0, unit="passage", desc="Indexing", file=sys.stderr, disable=None, leave=False)

        def on_total(total: int) -> None:
            bar.reset(total=total)

        try:
            report = knowledge_index(full=full, force_files=force_files, progress=bar.update, on_total=on_total)
        except KnowledgeError as error:
            raise usage_error(f"knowledge base: {error}") from None
        except RetrievalError as error:
            raise usage_error(f"index: {error}") from None
        finally:
            bar.close()
        self.stdout.write(f"Knowledge base: {report.loaded.summary()} passages loaded from the files.")
        self.stdout.write(f"Index: {report.summary()}.")
