"""A realistic, seeded sample of chat data for demos, manual testing and benchmarks.

>>> summary = generate(store, sessions=200, messages_per_session=100, seed=7)

A sample holds sessions on eight topics (trips, code, recipes, training, money,
writing, science, home repairs): user and assistant turns, assistant tool calls
answered by tool messages (about one in twelve fails, some are retried), edited
questions and regenerated answers (branches, sometimes switched back), sub-agent
sessions, attachments, versioned files, summaries of long sessions, token usage and
cost from nine provider/model pairs, and a few archived sessions. The text comes from
templates filled by one ``random.Random(seed)``: the same seed gives the same text.

Each session is written in one transaction with ``append_many`` for the main branch.
The chat API stamps every write with the current time and has no way to import older
messages, so the sample then moves the times of its own rows into the past 90 days in
the same transaction (:func:`_backdate`), a stopgap until an import API exists.
A record of every sample is kept in the setting ``demo.samples``; :func:`find_sample`
finds an earlier sample made with the same parameters.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from .errors import InvalidInput, NotFound

DEFAULT_SESSIONS = 200
DEFAULT_MESSAGES_PER_SESSION = 100
DEFAULT_SEED = 7
SAMPLES_KEY = "demo.samples"
UTC = timezone.utc


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`generate` wrote (or what an earlier, reused sample holds)."""

    seed: int
    sessions: int
    messages_per_session: int
    messages: int
    branch_messages: int
    tool_calls: int
    failed_tool_calls: int
    attachments: int
    file_versions: int
    #: A session with branches, tool calls and an attachment: a good one to show.
    showcase_id: str
    #: A search query that finds messages of the showcase session.
    query: str
    created_at: str
    seconds: float
    reused: bool = False


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().splitlines() if line.strip()]


def _topic(anchor: str, system: str, slots: dict[str, str], titles: str, asks: str, says: str,
           tools: list[tuple[str, dict[str, str], str]]) -> dict[str, Any]:
    return {"anchor": anchor, "system": system, "titles": titles.split("|"),
            "asks": _lines(asks), "says": _lines(says), "tools": tools,
            "slots": {key: value.split("|") for key, value in slots.items()}}


TOPICS: dict[str, dict[str, Any]] = {
    "travel": _topic("city", "You are a travel planner. Be concrete: times, prices, areas.", {
        "city": "Lisbon|Porto|Kyoto|Osaka|Reykjavik|Marrakesh|Oaxaca|Tbilisi|Hanoi|Copenhagen|"
                "Vienna|Cape Town|Buenos Aires|Edinburgh|Istanbul|Seville|Ljubljana|Vancouver",
        "thing": "a day trip|the old town|street food|a cooking class|the night train|a sunset "
                 "viewpoint|the flea market|a hot spring|the botanical garden|a walking tour",
        "airline": "TAP|Lufthansa|KLM|easyJet|Iberia|Turkish Airlines|ANA|Icelandair",
        "area": "the old quarter|the riverside|the station district|the university quarter|"
                "the harbour"},
        "{days} days in {city}|Weekend in {city}|{city} on a budget|Flights to {city} in {month}|"
        "{city} with kids|Honeymoon ideas: {city}", """
        I'm planning {days} days in {city} in {month}. Where should we stay?
        Can you find flights to {city} for the second week of {month}?
        Is {thing} in {city} worth it, or is it a tourist trap?
        What's the weather usually like in {city} in {month}?
        Give me a day-by-day itinerary for {city}, nothing too rushed.
        How much cash should I carry in {city}? Are cards accepted everywhere?
        We land at {time}. Can we reach {area} by public transport?""", """
        For {days} days I'd stay in {area}: it's walkable and close to {thing}.
        Flights in {month} are cheapest mid-week; {airline} often has returns around {price} EUR.
        Book {thing} a few days ahead, it sells out at weekends.
        In {month} {city} has mild mornings and about {n} rainy days, so pack a light jacket.
        Day {n} suits {thing}: start early and finish with dinner in {area}.
        Most places take cards, but keep some cash for markets and small cafés.
        The airport train takes about {minutes} minutes and costs a fraction of a taxi.
        With one evening only, skip the crowded viewpoint and try {thing2} instead.""", [
            ("search_flights", {"to": "{city}", "month": "{month}", "passengers": "{n}"},
             "{n} flights to {city}; cheapest {price} EUR with {airline}, {hours} h in total"),
            ("get_weather", {"city": "{city}", "month": "{month}"},
             "{city} in {month}: average high {temp} °C, {n} days of rain"),
            ("search_hotels", {"city": "{city}", "area": "{area}"},
             "{n} hotels in {area}, {city}; best rated from {price} EUR a night")]),
    "code": _topic("tech", "You are a senior engineer. Show code; explain trade-offs briefly.", {
        "tech": "Python asyncio|SQLite|PostgreSQL|Rust|TypeScript|React|Docker|Kubernetes|pandas|"
                "FastAPI|Django|Go|Terraform|GitHub Actions|Redis",
        "thing": "the connection pool|the retry logic|the test fixtures|the migration|the CI "
                 "pipeline|the cache layer|the logging setup|the error handling|a background "
                 "worker|the API client",
        "error": "KeyError|TimeoutError|a deadlock|database is locked|a memory leak|a race "
                 "condition|an off-by-one error|a flaky test|UnicodeDecodeError",
        "name": "load_orders|parse_config|sync_users|fetch_page|retry_request|build_index|"
                "resize_image|send_invoice"},
        "Debugging {error} in {tech}|{tech}: refactor {thing}|Why is {name} slow?|"
        "Code review: {thing}|Migrating to {tech}|{tech} best practices", """
        I get {error} when {name} runs under load. What am I missing?
        How would you structure {thing} in a {tech} project?
        Can you review `{name}`? It takes {n} seconds on a small input.
        Write a test that reproduces {error} in {name}.
        Is it worth moving {thing} to {tech}, or is that over-engineering?
        Explain what {tech} does differently here, in plain words.""", """
        The {error} comes from sharing one connection across threads; give each worker its own.
        I'd put {thing} behind a small interface so {name} can be tested without the network.
        Your loop runs {n} queries per item: fetch everything once and join in memory.
        Wrap the call in a retry with exponential backoff, capped at {n} attempts.
        {tech} gives you this for free, but only if {thing} is set up at start-up.
        Add a regression test first, then change {name}; it should fail before the fix.
        Profiling shows {pct}% of the time in {name}; the rest is noise.
        ```python|def {name}(items, *, retries={n}):|    for attempt in range(retries):|        try:|            return [transform(item) for item in items]|        except TimeoutError:|            time.sleep(2 ** attempt)|    raise RuntimeError("gave up after {n} attempts")|```
        ```sql|CREATE INDEX orders_by_customer ON orders (customer_id, created_at);|SELECT * FROM orders WHERE customer_id = ? ORDER BY created_at DESC LIMIT {n};|```""", [  # noqa: E501
            ("run_python", {"code": "{name}(sample)"}, "ran in {ms} ms; returned {n} rows"),
            ("read_file", {"path": "{path}"}, "{path}: {lines} lines, last changed {n} days ago"),
            ("run_tests", {"selector": "tests/test_{name}.py"},
             "{n} passed, 1 failed: test_{name}_under_load ({error})")]),
    "recipes": _topic("dish", "You are a friendly cook. Give quantities in grams.", {
        "dish": "mushroom risotto|tonkotsu ramen|sourdough bread|shakshuka|pad thai|seafood "
                "paella|chickpea curry|banana bread|tiramisu|lasagne|pho|falafel",
        "ingredient": "saffron|miso|smoked paprika|fresh basil|coconut milk|parmesan|tahini|"
                      "lemongrass|brown butter|anchovies",
        "thing": "a cast-iron pan|a slow cooker|a pressure cooker|a stand mixer|a Dutch oven"},
        "{dish} for {n} people|Vegetarian {dish}|Fixing my {dish}|{dish} without {ingredient}|"
        "Meal prep: {dish}", """
        I want to cook {dish} for {n} people tonight. What do I need?
        Can I replace {ingredient} in {dish}? I can't find it anywhere.
        My {dish} always comes out bland. What am I doing wrong?
        How long does {dish} keep in the fridge?
        Can I make {dish} in {thing} instead?
        Scale the {dish} recipe to {n} servings and convert it to grams, please.""", """
        For {n} people plan on about {grams} g of the main ingredient and {minutes} minutes.
        Season in layers: a pinch of salt at every stage makes {dish} taste finished.
        Without {ingredient}, a little {ingredient2} gives a similar depth.
        {dish} keeps {n} days in the fridge in a closed box; reheat it gently.
        {thing} works, just cut the liquid by about a third.
        Toast the spices first; it is the difference between flat and fragrant.
        Let it rest {minutes} minutes before serving so the texture settles.""", [
            ("nutrition_lookup", {"dish": "{dish}", "servings": "{n}"},
             "{dish}: {kcal} kcal per serving, {grams} g in total"),
            ("unit_convert", {"value": "{n} cups", "to": "grams"}, "{n} cups is about {grams} g")]),
    "fitness": _topic("goal", "You are a running and strength coach. Be safe and specific.", {
        "goal": "a first marathon|a 5k under 25 minutes|a 100 kg deadlift|a first pull-up|"
                "a half marathon|cycling 100 km|a sprint triathlon",
        "thing": "interval runs|a deload week|zone 2 training|strength days|the long run|"
                 "mobility work|rest days"},
        "Training plan: {goal}|Coming back from injury|{n}-week plan for {goal}|"
        "Eating for {goal}", """
        I have {n} weeks to prepare for {goal}. Is that enough?
        My knee hurts after {thing}. Should I stop?
        How many days a week should I do {thing}?
        Can you put {thing} in my calendar for the next {n} weeks?
        What should I eat the night before {goal}?""", """
        With {n} weeks you can get there if you add about 10% volume a week.
        Make one session a week {thing}; it carries most of the progress towards {goal}.
        Pain that changes how you move means rest; see a physio if it lasts {n} days.
        Sleep is the cheapest boost there is: aim for {hours} hours.
        Keep easy days easy: you should be able to hold a conversation.
        Eat a normal, carb-heavy dinner you know well; nothing new the night before.""", [
            ("calendar_create", {"title": "{thing}", "weeks": "{n}"},
             "created {n} events, the first on {weekday} at {time}"),
            ("calculator", {"expression": "{n} * 1.1 ** 4"}, "{value}")]),
    "finance": _topic("plan", "You help with personal budgets. You do not give investment advice.",
                      {"plan": "an emergency fund|a house deposit|paying off a credit card|"
                               "a retirement pot|a sabbatical|a new car",
                       "thing": "index funds|a high-yield savings account|the 50/30/20 rule|"
                                "a spending tracker|automatic transfers|a fixed-rate mortgage"},
                      "Budget for {plan}|Saving for {plan}|Is {thing} right for me?|"
                      "Monthly budget review", """
        I take home {price}0 a month. How much should go to {plan}?
        Explain {thing} like I'm new to this.
        Here's my spending export. Where is the money going?
        Should I put {plan} first, or {thing}?
        What would {price} a month grow to in {n} years at {pct}%?""", """
        Start with {plan}: {n} months of expenses is a sensible first target.
        {thing} takes the decision out of your hands, which is the point.
        Your biggest category is eating out, at {pct}% of spending.
        Pay the highest-interest debt first; that return is guaranteed.
        At {pct}% a year, {price} a month becomes roughly {value} in {n} years.""", [
            ("calculator", {"expression": "{price} * 12 * {n}"}, "{value}"),
            ("currency_convert", {"amount": "{price}", "from": "EUR", "to": "USD"},
             "{price} EUR = {value} USD")]),
    "writing": _topic("piece", "You are an editor. Keep the writer's voice.", {
        "piece": "a cover letter|an email to my landlord|a wedding toast|a product announcement|"
                 "a complaint to my airline|a thank-you note|a conference talk abstract",
        "thing": "the opening line|the tone|the call to action|the second paragraph|"
                 "the subject line|the ending",
        "tone": "warmer|more formal|shorter|more confident|funnier"},
        "Draft: {piece}|Polishing {piece}|Make {piece} {tone}|Help with {thing}", """
        Can you help me write {piece}? I keep staring at a blank page.
        Make {thing} {tone}.
        Here's my draft of {piece}. Be honest.
        Give me {n} options for {thing}.
        Is this too long? It's {words} words.""", """
        Lead with the one thing you want the reader to remember.
        I tightened {thing}: it says the same in half the words.
        Here is a {tone} version of {piece} that keeps your voice.
        Cut the apology at the start; it undersells you.
        End with a concrete next step, like a date or a question.""", [
            ("grammar_check", {"text": "{thing}"},
             "{n} suggestions: passive voice, a repeated word, one long sentence")]),
    "science": _topic("subject", "You explain science clearly, with analogies.", {
        "subject": "black holes|photosynthesis|CRISPR|ocean tides|mRNA vaccines|plate "
                   "tectonics|quantum entanglement|the immune system|neutron stars",
        "thing": "an analogy|the history|the maths|a common misconception|the latest research",
        "analogy": "a library with a very strict librarian|a kitchen that runs on sunlight|"
                   "a pair of gloves split between two cities|a conveyor belt under the sea"},
        "Explain {subject}|{subject} for a {age}-year-old|Homework: {subject}|"
        "Myths about {subject}", """
        Explain {subject} to me like I'm {age}.
        What's {thing} behind {subject}?
        Give me {thing} that makes {subject} click.
        Which book should I read next about {subject}?""", """
        Think of {subject} as {analogy}.
        The key idea of {subject} fits in one sentence; the details take a semester.
        A common misconception is that it happens at once; it takes about {n} steps.
        Researchers measured this in {year}, and the result surprised everyone.
        The maths is optional here; the picture is what matters.""", [
            ("wikipedia", {"title": "{subject}"}, "{subject}: {n} paragraphs retrieved"),
            ("web_search", {"query": "{subject} {thing}"}, "{n} results; top: a {year} review")]),
    "home": _topic("project", "You help with home repairs and gardening. Safety first.", {
        "project": "tomatoes on a balcony|a leaky kitchen tap|a compost bin|drywall patching|"
                   "a raised garden bed|basil that keeps dying|repainting the hallway",
        "thing": "the soil|watering|the washer|a stud finder|primer|drainage|sunlight"},
        "Help: {project}|Weekend project: {project}|{project} troubleshooting", """
        I'm dealing with {project}. Where do I start?
        Is {thing} the problem? It's been {n} days.
        What tools do I need for {project}?
        Remind me on {weekday} to check {thing}.""", """
        Start with {thing}; it is the cause in most cases like yours.
        You'll need about {minutes} minutes and basic tools, nothing special.
        Water deeply twice a week rather than a little every day.
        Turn off the water supply first and keep the old washer to match the size.
        If it still happens after {n} days, it's worth calling a professional.""", [
            ("get_weather", {"city": "home", "days": "{n}"},
             "next {n} days: {temp} °C, rain on {weekday}"),
            ("calendar_create", {"title": "check {thing}", "day": "{weekday}"},
             "reminder set for {weekday} at {time}")]),
}

COMMON = {
    "month": "January|February|March|April|May|June|July|August|September|October|November|"
             "December".split("|"),
    "weekday": "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday".split("|"),
    "days": ["3", "4", "5", "7", "10"],
    "path": "app/main.py|app/db.py|app/worker.py|tests/test_api.py|src/lib.rs|web/App.tsx|"
            "Dockerfile".split("|"),
}
NUMBERS: dict[str, Callable[[random.Random], str]] = {
    "n": lambda r: str(r.randint(2, 12)), "price": lambda r: str(r.randint(40, 900)),
    "minutes": lambda r: str(r.randint(5, 90)), "pct": lambda r: str(r.randint(3, 45)),
    "hours": lambda r: str(r.randint(2, 14)), "temp": lambda r: str(r.randint(4, 31)),
    "grams": lambda r: str(r.randrange(50, 900, 10)), "kcal": lambda r: str(r.randint(250, 950)),
    "ms": lambda r: str(r.randint(12, 4800)), "year": lambda r: str(r.randint(2012, 2025)),
    "age": lambda r: str(r.randint(5, 15)), "words": lambda r: str(r.randrange(150, 900, 10)),
    "lines": lambda r: str(r.randint(20, 600)), "value": lambda r: f"{r.uniform(10, 90000):,.2f}",
    "time": lambda r: f"{r.randint(6, 23):02d}:{r.choice((0, 15, 30, 45)):02d}",
}
FOLLOW_UPS = _lines("""
    Thanks, that helps. What about {thing}?
    Can you make that shorter?
    Could you put that in a table?
    Why that and not {thing2}?
    Hmm, that didn't work. Any other idea?
    Perfect. One more question about {thing}.""")
INTROS = ["Sure.", "Good question.", "Here's what I'd do.", "Let's break it down.", "",
          "Short answer: it depends, but mostly yes."]
TOOL_ERRORS = ["TimeoutError: no answer within 30 s", "HTTP 503 Service Unavailable",
               "RateLimitError: 429 Too Many Requests", "ConnectionResetError: reset by peer"]
#: provider, model, US dollars per million input and output tokens, reasoning model?
MODELS = [("openai", "gpt-4.1", 2.0, 8.0, False), ("openai", "gpt-4.1-mini", 0.4, 1.6, False),
          ("openai", "o4-mini", 1.1, 4.4, True), ("anthropic", "claude-sonnet-4", 3.0, 15.0, False),
          ("anthropic", "claude-3-5-haiku", 0.8, 4.0, False),
          ("google", "gemini-2.5-pro", 1.25, 10.0, True),
          ("google", "gemini-2.5-flash", 0.3, 2.5, False),
          ("mistral", "mistral-large-latest", 2.0, 6.0, False),
          ("ollama", "llama3.1:8b", 0.0, 0.0, False)]
FILES = {"csv": "text/csv", "png": "image/png", "pdf": "application/pdf", "txt": "text/plain"}
PREFACES = ["Let me check that.", "I'll look that up.", "Checking now.", "One moment."]


class _Slots(dict):
    """Template values: the fixed ones, else drawn once per template from the pools."""

    def __init__(self, rng: random.Random, pools: dict[str, list[str]], fixed: dict[str, str]
                 ) -> None:
        super().__init__(fixed)
        self._rng, self._pools = rng, pools

    def __missing__(self, key: str) -> str:
        base = key.rstrip("0123456789")
        value = NUMBERS[base](self._rng) if base in NUMBERS else \
            self._rng.choice(self._pools.get(base) or COMMON[base])
        self[key] = value
        return value


class _Conversation:
    """One session's text: turns, tool calls, usage and cost, from one topic."""

    def __init__(self, rng: random.Random, topic: str) -> None:
        self.rng, self.name, self.topic = rng, topic, TOPICS[topic]
        self.anchor = rng.choice(self.topic["slots"][self.topic["anchor"]])
        self.provider, self.model, self.price_in, self.price_out, self.reasoning = \
            rng.choice(MODELS)
        self.context = len(self.topic["system"]) // 4
        self.items: list[dict[str, Any]] = []
        self.uploads: list[tuple[int, str, str, bytes]] = []
        self.tool_calls = self.failed = 0

    def slots(self) -> _Slots:
        return _Slots(self.rng, self.topic["slots"], {self.topic["anchor"]: self.anchor})

    def fill(self, template: str, slots: _Slots | None = None, *, sentence: bool = True) -> str:
        text = template.format_map(slots if slots is not None else self.slots())
        if text.startswith("```"):
            return text.replace("|", "\n")
        return text[:1].upper() + text[1:] if sentence else text

    def add(self, role: str, content: str, **fields: Any) -> dict[str, Any]:
        item = {"role": role, "content": content, **fields}
        tokens = len(content) // 4 + 4
        if role == "assistant":
            calls = sum(part.get("type") == "tool_call" for part in fields.get("parts", ()))
            usage = {"input_tokens": self.context, "output_tokens": tokens + 25 * calls}
            if self.reasoning:
                usage["reasoning_tokens"] = self.rng.randint(40, 900)
                usage["output_tokens"] += usage["reasoning_tokens"]
            if self.context > 4000 and self.provider in ("openai", "anthropic"):
                usage["cached_input_tokens"] = self.context * 4 // 5
            cost = (self.context * self.price_in + usage["output_tokens"] * self.price_out) / 1e6
            item.update(provider=self.provider, model=self.model, usage=usage,
                        cost=round(cost, 6))
        self.context += tokens
        self.items.append(item)
        return item

    def answer(self) -> str:
        says = self.topic["says"]
        count = min(len(says), self.rng.randint(2, 4))
        picked = [self.fill(template) for template in self.rng.sample(says, count)]
        prose = " ".join(s for s in picked if not s.startswith("```"))
        text = " ".join(filter(None, [self.rng.choice(INTROS), prose]))
        if self.rng.random() < 0.25:
            slots = self.slots()
            text += "\n\n" + "\n".join(f"- {self.fill(f'{{thing{i}}}', slots)}" for i in range(3))
        return "\n\n".join([text, *(s for s in picked if s.startswith("```"))])

    def call(self) -> tuple[dict[str, Any], str, str | None]:
        name, arguments, output = self.rng.choice(self.topic["tools"])
        slots = self.slots()
        values = {key: self.fill(value, slots, sentence=False) for key, value in arguments.items()}
        values = {key: int(v) if v.isdigit() else v for key, v in values.items()}
        self.tool_calls += 1
        error = self.rng.choice(TOOL_ERRORS) if self.rng.random() < 0.08 else None
        self.failed += error is not None
        part = {"type": "tool_call", "id": f"call_{self.rng.getrandbits(48):012x}",
                "name": name, "arguments": values}
        return part, self.fill(output, slots), error

    def turn(self, *, first: bool = False, upload: bool = False) -> None:
        pool = self.topic["asks"] if first or self.rng.random() < 0.6 else FOLLOW_UPS
        ask = self.fill(self.rng.choice(pool))
        if upload:
            filename, media_type, data = _upload(self.rng, self.name)
            self.uploads.append((len(self.items), filename, media_type, data))
            self.add("user", ask, parts=[{"type": "text", "text": ask}, {
                "type": "file", "filename": filename, "media_type": media_type}])
        else:
            self.add("user", ask)
        if self.topic["tools"] and self.rng.random() < 0.35:
            calls = [self.call() for _ in range(1 if self.rng.random() < 0.85 else 2)]
            self._ask_tools(self.rng.choice(PREFACES), calls)
            for part, output, error in calls:
                if error is not None and self.rng.random() < 0.6:
                    retry = self.call()
                    self._ask_tools(f"The {part['name']} call failed ({error}); trying again.",
                                    [(dict(part, id=retry[0]["id"]), output, retry[2])])
        self.add("assistant", self.answer(), finish_reason="stop")

    def _ask_tools(self, text: str, calls: list[tuple[dict[str, Any], str, str | None]]) -> None:
        self.add("assistant", text, finish_reason="tool_calls",
                 parts=[{"type": "text", "text": text}, *(part for part, _, _ in calls)])
        for part, output, error in calls:
            result = {"type": "tool_result", "call_id": part["id"], "output": error or output}
            self.add("tool", error or output, parts=[dict(result, is_error=True) if error
                                                     else result])

    def build(self, length: int, *, uploads: bool) -> list[dict[str, Any]]:
        summarised = length < 120
        while len(self.items) < length:
            upload = uploads and len(self.uploads) < 2 and (
                not self.items or self.rng.random() < 0.3)
            self.turn(first=not self.items, upload=upload)
            if not summarised and len(self.items) >= length * 0.6:
                summarised = True
                self.add("system", self.fill(f"Summary of the conversation so far: the user "
                                             f"asked about {self.anchor}. {{thing}} and "
                                             "{thing2} were covered."), summary=True)
        return self.take()

    def take(self) -> list[dict[str, Any]]:
        items, self.items = self.items, []
        return items


def _upload(rng: random.Random, topic: str) -> tuple[str, str, bytes]:
    kind = {"finance": "csv", "recipes": "png", "home": "png", "travel": "pdf"}.get(topic, "txt")
    if kind == "csv":
        rows = [f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},"
                f"{rng.choice(['rent', 'groceries', 'eating out', 'transport'])},"
                f"{rng.uniform(3, 900):.2f}" for _ in range(rng.randint(20, 200))]
        return "spending.csv", FILES[kind], ("date,category,amount\n" + "\n".join(rows)).encode()
    if kind == "txt":
        text = "Traceback (most recent call last):\n" + "".join(
            f'  File "app/{rng.choice(COMMON["path"])}", line {rng.randint(1, 400)}\n'
            for _ in range(rng.randint(3, 12))) + "TimeoutError: timed out\n"
        return "traceback.txt", FILES[kind], text.encode()
    magic = b"\x89PNG\r\n\x1a\n" if kind == "png" else b"%PDF-1.7\n"
    name = "photo.png" if kind == "png" else "booking.pdf"
    return name, FILES[kind], magic + rng.randbytes(rng.randint(2_000, 40_000))


def _branch(store: Any, conv: _Conversation, session_id: str, created: list[Any]) -> list[Any]:
    """Edit a recent question or regenerate a recent answer; maybe switch back."""
    rng, leaf = conv.rng, created[-1].id
    users = [m for m in created[-12:] if m.role == "user"]
    answered = [m for m in created if m.role == "assistant" and m.parent_id in
                {u.id for u in users}]
    if not users:
        return []
    if rng.random() < 0.5 or not answered:
        target = rng.choice(users)
        text = rng.choice(["Actually, ", "Let me rephrase: ", "Sorry, I meant: "])
        edited = store.chat.edit(target.id, content=text + target.content[:1].lower()
                                 + target.content[1:],
                                 parts=[p for p in target.parts if p.get("type") != "text"])
        conv.add("assistant", conv.answer(), finish_reason="stop")
        if rng.random() < 0.5:
            conv.turn()
        new = [edited, *store.chat.append_many(session_id, conv.take())]
    else:
        conv.provider, conv.model, conv.price_in, conv.price_out, conv.reasoning = \
            rng.choice(MODELS)
        item = conv.add("assistant", conv.answer(), finish_reason="stop")
        conv.take()
        new = [store.chat.append(session_id, **item, parent_id=answered[-1].parent_id)]
    if rng.random() < 0.4:
        store.chat.switch_branch(session_id, leaf)
    return new


def _save_files(store: Any, conv: _Conversation, session_id: str, created: list[Any]
                ) -> list[tuple[str, str]]:
    """Versions of one to three source files, each tied to an assistant message."""
    answers = [m.id for m in created if m.role == "assistant"]
    saved = []
    for path in conv.rng.sample(COMMON["path"], conv.rng.randint(1, 3)):
        source = f"# {path}\n"
        for _ in range(conv.rng.randint(1, 4)):
            source += conv.fill('\ndef {name}(items, limit={n}):\n    """{thing}."""\n'
                                "    return sorted(items)[:limit]\n")
            message_id = conv.rng.choice(answers)
            version = store.chat.save_file(session_id, path, source, message_id=message_id,
                                           media_type="text/plain")
            saved.append((version.id, message_id))
    return saved


def _backdate(store: Any, session_id: str, messages: list[Any], start: datetime,
              rng: random.Random, files: list[tuple[str, str]], uploads: list[str]) -> None:
    """Move the session's rows to plausible past times (see the module docstring)."""
    times: dict[str | None, datetime] = {None: start}
    siblings: Counter = Counter()
    for message in sorted(messages, key=lambda m: m.seq):
        gap = {"user": rng.uniform(20, 360) if rng.random() > 0.03 else rng.uniform(3600, 36000),
               "tool": rng.uniform(0.3, 6)}.get(message.role, rng.uniform(2, 45))
        gap += rng.uniform(60, 600) if siblings[message.parent_id] else 0
        siblings[message.parent_id] += 1
        times[message.id] = times[message.parent_id] + timedelta(seconds=gap)
    as_stored = (lambda t: t.isoformat()) if store.dialect == "sqlite" else (lambda t: t)
    calls = []
    for call in store.chat.tool_calls(session_id, limit=100_000):
        created = times[call.message_id]
        started = created + timedelta(milliseconds=rng.randint(5, 120))
        finished = times.get(call.result_message_id)
        started = min(started, finished) if finished else started
        duration = round((finished - started).total_seconds() * 1000) if finished else None
        calls.append((as_stored(created), as_stored(started),
                      finished and as_stored(finished), duration, call.id))
    last = max(times.values())
    with store._backend.write("chat") as conn:
        conn.many("UPDATE messages SET created_at = ? WHERE id = ?",
                  [(as_stored(t), key) for key, t in times.items() if key is not None])
        conn.many("UPDATE tool_calls SET created_at = ?, started_at = ?, finished_at = ?, "
                  "duration_ms = ? WHERE id = ?", calls)
        conn.many("UPDATE attachments SET created_at = ? WHERE message_id = ?",
                  [(as_stored(times[m]), m) for m in uploads])
        conn.many("UPDATE file_versions SET created_at = ? WHERE id = ?",
                  [(as_stored(times[m]), v) for v, m in files])
        conn.run("UPDATE sessions SET created_at = ?, updated_at = ?, active_at = ? WHERE id = ?",
                 (as_stored(start), as_stored(last), as_stored(last), session_id))


def _lengths(rng: random.Random, count: int, average: int) -> list[int]:
    """Session lengths that vary by up to half the average and add up to count * average."""
    lengths = [average] * (count % 2)
    for _ in range(count // 2):
        spread = rng.randint(0, average // 2)
        lengths += [average + spread, max(1, average - spread)]
    rng.shuffle(lengths)
    return lengths


def _write_session(store: Any, conv: _Conversation, *, length: int, showcase: bool,
                   parent_id: str | None, start: datetime) -> tuple[str, Counter]:
    rng = conv.rng
    title = conv.fill(rng.choice(conv.topic["titles"]))
    if parent_id is not None:
        title = f"Sub-agent: {title}"
    elif not showcase and rng.random() < 0.03:
        title = None
    session = store.chat.create_session(
        title=title, provider=conv.provider, model=conv.model,
        system_prompt=conv.topic["system"],
        generation={"temperature": rng.choice([0.2, 0.5, 0.7, 1.0]),
                    "max_tokens": rng.choice([1024, 2048, 4096])},
        metadata={"demo": True, "topic": conv.name,
                  **({"agent": rng.choice(["researcher", "coder", "critic"])}
                     if parent_id else {})},
        parent_id=parent_id)
    created = store.chat.append_many(session.id, conv.build(
        length, uploads=showcase or rng.random() < 0.15))
    uploads = []
    for index, filename, media_type, data in conv.uploads:
        store.chat.attach(created[index].id, data, filename=filename, media_type=media_type)
        uploads.append(created[index].id)
    branched = _branch(store, conv, session.id, created) if showcase or rng.random() < 0.3 \
        else []
    files = _save_files(store, conv, session.id, created) if conv.name == "code" else []
    if not showcase and rng.random() < 0.08:
        store.chat.archive_session(session.id)
    _backdate(store, session.id, created + branched, start, rng, files, uploads)
    return session.id, Counter(
        messages=len(created) + len(branched), branch_messages=len(branched),
        tool_calls=conv.tool_calls, failed_tool_calls=conv.failed,
        attachments=len(uploads), file_versions=len(files))


def _check(field: str, value: object, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidInput(field, f"must be an integer between 1 and {maximum}, got {value!r:.40}")
    return value


def generate(store: Any, *, sessions: int = DEFAULT_SESSIONS,
             messages_per_session: int = DEFAULT_MESSAGES_PER_SESSION,
             seed: int = DEFAULT_SEED,
             progress: Callable[[int, int], None] | None = None) -> DemoSummary:
    """Write a new sample into ``store`` (commits once per session) and record it.

    Args:
        sessions: how many sessions, sub-agent sessions included.
        messages_per_session: the average length of a session's main branch; the total
            is at least ``sessions * messages_per_session`` messages.
        seed: the same seed writes the same text.
        progress: called as ``progress(done, total)`` after each session.

    Raises:
        InvalidInput: a size is out of range.
    """
    _check("sessions", sessions, 100_000)
    _check("messages_per_session", messages_per_session, 10_000)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidInput("seed", f"must be an integer, got {seed!r:.40}")
    began, now = time.perf_counter(), datetime.now(UTC)
    rng = random.Random(seed)
    totals: Counter = Counter()
    roots: list[tuple[str, datetime, str]] = []  # id, start, topic
    showcase_id = query = ""
    for index, length in enumerate(_lengths(rng, sessions, messages_per_session)):
        showcase = index == 0
        parent = rng.choice(roots) if roots and rng.random() < 0.12 else None
        topic = "travel" if showcase else parent[2] if parent else rng.choice(list(TOPICS))
        conv = _Conversation(rng, topic)
        if parent is not None:
            start = parent[1] + timedelta(minutes=rng.uniform(1, 30))
        else:
            start = now - timedelta(days=2 if showcase else rng.uniform(3, 90))
        with store.chat.transaction():
            session_id, facts = _write_session(store, conv, length=length, showcase=showcase,
                                               parent_id=parent and parent[0], start=start)
        totals.update(facts)
        if parent is None:
            roots.append((session_id, start, topic))
        if showcase:
            showcase_id = session_id
            query = f'"{conv.anchor.lower()}"' if " " in conv.anchor else conv.anchor.lower()
        if progress is not None:
            progress(index + 1, sessions)
    summary = DemoSummary(
        seed=seed, sessions=sessions, messages_per_session=messages_per_session,
        showcase_id=showcase_id, query=query, created_at=now.isoformat(),
        seconds=round(time.perf_counter() - began, 2),
        **{key: totals[key] for key in ("messages", "branch_messages", "tool_calls",
                                        "failed_tool_calls", "attachments", "file_versions")})
    samples = store.settings.get(SAMPLES_KEY, [])
    store.settings.set(SAMPLES_KEY, [*(samples if isinstance(samples, list) else []),
                                     asdict(summary)])
    return summary


def find_sample(store: Any, *, sessions: int = DEFAULT_SESSIONS,
                messages_per_session: int = DEFAULT_MESSAGES_PER_SESSION,
                seed: int = DEFAULT_SEED) -> DemoSummary | None:
    """The newest recorded sample made with these parameters whose showcase session
    still exists, or None (read-only)."""
    samples = store.settings.get(SAMPLES_KEY, [])
    for record in reversed(samples if isinstance(samples, list) else []):
        if not isinstance(record, dict) or (record.get("seed"), record.get("sessions"),
                                            record.get("messages_per_session")) != (
                seed, sessions, messages_per_session):
            continue
        try:
            summary = DemoSummary(**{**record, "reused": True})
            store.chat.get_session(summary.showcase_id)
        except (TypeError, NotFound, InvalidInput):
            continue
        return summary
    return None
