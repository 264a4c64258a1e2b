"""Locustfile for a stock `locust --master` that drives gsai-load workers.

A Locust master sends each worker a count per user class name, so the master's locustfile must
declare the class the workers run, as Boomer (Go) and locust4j (Java) users do. gsai-load workers
sum the counts they are given, whatever the names, and echo the map back; this file declares the
one class they report, `GsaiUser`. Its task is never run: a master runs no users.

    locust --master --headless -f tests/locust/gsai_dummy.py -u 10 -r 2 -t 5m --csv out
    gsai-load --worker --master-host <master address>
"""

from locust import User, constant, task


class GsaiUser(User):
    """Stands for a gsai-load simulated user (the workers run the real one)."""

    wait_time = constant(1)

    @task
    def chat_completion(self):
        pass
