"""Answers to a follow-up about what the bot has just shown, without an LLM.

The dialog context (bots.dialog) holds the last list, the product in focus
and the query with its price and pack size. A message that points back at
them («а подешевле?», «второй вариант», «а в наличии?», «сколько стоит
килограмм?», «а побольше?») is answered from them; one that adds an
attribute («а охлаждённый?», «а копчёная?») searches the same product words
with it. A message naming other products is left to the ordinary search.
"""

from decimal import Decimal

from bots import dialog, intents
from bots.dialog import DialogContext
from bots.replies import MAX_PRODUCTS, MORE, OPERATOR_HINT, Kind, Reply, found_reply, list_reply, out_of_stock_reply
from catalog.followups import (
    base_words,
    group_by_pack,
    matches_all,
    pack_grams,
    pack_siblings,
    priced_alternatives,
)
from catalog.models import Product
from catalog.presentation import money, product_block, product_line
from catalog.query import PriceLimit, find_products, has_size
from catalog.search import NOISE_WORDS
from catalog.selectors import match_faq
from catalog.text import crude_stem, words
from catalog.vocabulary import title_vocabulary

DESCRIPTION_CHARS = 200


def answer(text: str, follow: intents.FollowUp, context: DialogContext) -> Reply | None:
    """The reply to a message that refers to the dialog's context, or None when it does not."""
    if not context.has_products:
        return None
    # «а икра кеты есть в наличии?» asks about the caviar shown; «Какая икра есть?» is a new question.
    new_words = [w for w in follow.words if not (follow.opener and _in_query(w, context.query))]
    if new_words:
        # «хочу что-нибудь вкусное» is vague, not an attribute of what was shown.
        # «минтая» ends like an adjective but names a product: titles start with it.
        vocabulary = title_vocabulary()
        attributes = all(intents.is_attribute(w) and not vocabulary.names_products(w) for w in new_words)
        attributes = attributes and not intents.is_vague(text)
        if attributes and (follow.opener or len(new_words) <= 2):
            return _with_attributes(new_words, follow, context)
        return None
    if not (follow.asks or follow.ordinal or follow.price or follow.size):
        return None
    products, focus = dialog.products_of(context)
    if not products and focus is None:
        return None  # the products shown are gone from the catalog
    if follow.ordinal:
        return _pick(follow.ordinal, products, focus, context)
    # The product a pack or price question is about: the one picked, else the list's first in stock.
    subject = focus or next((p for p in products if p.in_stock), products[0])
    if follow.size:
        return _pack_of_size(follow.size, subject, context)
    if "kilo" in follow.asks:
        return _kilo(subject, context)
    if follow.asks & {"smaller", "larger"}:
        return _neighbour_pack(subject, context, smaller="smaller" in follow.asks)
    if follow.asks & {"cheaper", "dearer"}:
        return _price_step(
            [focus] if focus else _asked_for(products, context), context, cheaper="cheaper" in follow.asks
        )
    if follow.price:
        return _within(follow.price, context)
    if "stock" in follow.asks:
        return _stock([focus] if focus else products, context)
    if "price" in follow.asks:
        return _prices([focus] if focus else products, context)
    return None


def _asked_for(products: list[Product], context: DialogContext) -> list[Product]:
    """The products of the list that are what was asked for: «краб камчатский» shows crab sticks too,
    and «подешевле» means cheaper than the crab."""
    asked = [w for w in words(context.query) if w not in NOISE_WORDS and len(w) > 1]
    return [p for p in products if asked and matches_all(p, asked)] or products[:1]


def _in_query(word: str, query: str) -> bool:
    stem = crude_stem(word)
    return any(crude_stem(w) == stem for w in words(query))


def _query_of(context: DialogContext, product: Product) -> str:
    return context.query or " ".join(base_words(product))


def _limits_text(price: PriceLimit | None, size: str | None) -> str:
    """A price limit and a pack size written as a customer would, for catalog.query.find_products to read."""
    parts = [size or ""]
    if price and price.low is not None and price.high is not None:
        parts.append(f"от {price.low.normalize():f} до {price.high.normalize():f} руб")
    elif price and price.high is not None:
        parts.append(f"до {price.high.normalize():f} руб")
    elif price and price.low is not None:
        parts.append(f"от {price.low.normalize():f} руб")
    return " ".join(p for p in parts if p)


def inherited(text: str, follow: intents.FollowUp, context: DialogContext | None) -> tuple[str, str]:
    """«а креветки?» after «икра до 2000»: the new words with the limits of before, and a note saying so."""
    if context is None or not follow.opener or (not context.price and not context.size):
        return text, ""
    price = follow.price or context.price
    size = follow.size or context.size
    kept = []
    if not follow.price and context.price:
        kept.append(_price_words(context.price))
    if not follow.size and context.size:
        kept.append(f"фасовка {context.size}")
    if not kept:
        return text, ""
    searched = " ".join(follow.words) or text
    return f"{searched} {_limits_text(price, size)}", f" ({', '.join(kept)}, как вы просили)"


def _price_words(price: PriceLimit) -> str:
    if price.low is not None and price.high is not None:
        return f"от {money(price.low)} до {money(price.high)}"
    if price.high is not None:
        return f"до {money(price.high)}"
    return f"от {money(price.low)}"


# --- an item of the list ------------------------------------------------------


def _pick(ordinal: int, products: list[Product], focus: Product | None, context: DialogContext) -> Reply:
    if not products:
        products = [focus]
    n = len(products) if ordinal == -1 else ordinal
    if not 1 <= n <= len(products):
        return list_reply(
            f"В списке {_variants(len(products))}. Какой из них вас интересует?",
            products,
            context=_same(context),
            ending="",
        )
    product = products[n - 1]
    if not product.in_stock:
        return out_of_stock_reply(product, _query_of(context, product))
    lines = [product_line(product)]
    description = (product.short_description or "").strip()
    if description:
        clipped = description[:DESCRIPTION_CHARS]
        lines.append(clipped if len(description) <= DESCRIPTION_CHARS else clipped.rsplit(" ", 1)[0] + "…")
    if product.url:
        lines.append(product.url)
    lines += ["", MORE]
    kept = _same(context, focus=product)
    return Reply("\n".join(lines), Kind.CATALOG, products=[product], suggestions=["Доставка", "Оплата"], context=kept)


def _variants(n: int) -> str:
    if n % 10 == 1 and n % 100 != 11:
        return f"{n} вариант"
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return f"{n} варианта"
    return f"{n} вариантов"


def _same(context: DialogContext, **changes) -> dict:
    """The context as it is, with these changes (the list stays: «а третий?» still means its third)."""
    data = {
        "shown": context.shown,
        "focus": context.focus,
        "query": context.query,
        "price_low": context.price_low,
        "price_high": context.price_high,
        "size": context.size,
        **changes,
    }
    if isinstance(data["focus"], Product):
        data["focus"] = data["focus"].pk
    return DialogContext(**data).as_json()


# --- stock and prices of what was shown ------------------------------------------------


def _stock(products: list[Product], context: DialogContext) -> Reply:
    if len(products) == 1 and not products[0].in_stock:
        return out_of_stock_reply(products[0], _query_of(context, products[0]))
    available = [p for p in products if p.in_stock]
    if len(available) == len(products):
        heading = "Да, в наличии:" if len(products) > 1 else "Да, есть в наличии:"
        return list_reply(heading, products, context=_same(context))
    missing = ", ".join(p.title for p in products if not p.in_stock)
    return list_reply(
        "В наличии:",
        available,
        context=_same(context, shown=[p.pk for p in available], focus=None),
        ending=f"Сейчас нет: {missing}.",
    )


def _prices(products: list[Product], context: DialogContext) -> Reply:
    return list_reply("Цены:" if len(products) > 1 else "Цена:", products, context=_same(context))


# --- cheaper, dearer, within a new budget ---------------------------------------------------


def _price_step(products: list[Product], context: DialogContext, *, cheaper: bool) -> Reply | None:
    prices = [p.price for p in products if p.price is not None]
    if not prices:
        return None
    bound = min(prices) if cheaper else max(prices)
    group = products[0]
    query = _query_of(context, group)
    found = priced_alternatives(
        group,
        query,
        below=bound if cheaper else None,
        above=None if cheaper else bound,
        exclude=[p.pk for p in products],
        limit=MAX_PRODUCTS,
    )
    if context.size:
        found = [p for p in found if has_size(p, context.size)] or found
    word = "Дешевле" if cheaper else "Дороже"
    if not found:
        subject = f"«{group.title}»" if len(products) == 1 else f"показанного по запросу «{query}»"
        return Reply(
            f"{word} {subject} ({money(bound)}) в наличии ничего похожего нет. {OPERATOR_HINT}",
            Kind.CATALOG,
            suggestions=["Позвать оператора"],
        )
    # A budget ceiling stays for cheaper; asking for dearer lifts it.
    price = context.price if cheaper else None
    kept = dialog.shown(found, query=query, price=price, size=context.size)
    return list_reply(f"{'Подешевле' if cheaper else 'Подороже'} в наличии:", found, context=kept)


def _within(price: PriceLimit, context: DialogContext) -> Reply | None:
    result = find_products(f"{context.query} {_limits_text(price, context.size)}")
    return found_reply(result) if context.query else None


# --- another pack of the same product -----------------------------------------------------


def _neighbour_pack(product: Product, context: DialogContext, *, smaller: bool) -> Reply:
    grams = pack_grams(product)
    siblings = pack_siblings(product) if grams is not None else []
    if smaller:
        packs = sorted((s for s in siblings if pack_grams(s) < grams), key=lambda s: (-pack_grams(s), not s.in_stock))
    else:
        packs = sorted((s for s in siblings if pack_grams(s) > grams), key=lambda s: (pack_grams(s), not s.in_stock))
    packs = _one_per_size(packs)[:3]
    word = "поменьше" if smaller else "побольше"
    if packs:
        return list_reply(f"В фасовке {word}:", packs, context=dialog.shown(packs, query=_query_of(context, product)))
    size = _size_words(grams)
    own = (
        f"Фасовки {'меньше' if smaller else 'больше'} {size} у «{product.title}» нет."
        if size
        else f"Другой фасовки у «{product.title}» нет."
    )
    others = group_by_pack(product, _query_of(context, product), smaller=smaller, exclude=context.shown, limit=3)
    if others:
        return list_reply(
            f"{own} Похожее в фасовке {word}:", others, context=dialog.shown(others, query=_query_of(context, product))
        )
    return Reply(f"{own} {OPERATOR_HINT}", Kind.CATALOG, suggestions=["Позвать оператора"])


def _one_per_size(products: list[Product]) -> list[Product]:
    """The first product of each pack size: a large catalog has many makers of one product."""
    seen = set()
    kept = []
    for p in products:
        grams = pack_grams(p)
        if grams not in seen:
            seen.add(grams)
            kept.append(p)
    return kept


def _size_words(grams: Decimal | None) -> str:
    if grams is None:
        return ""
    if grams >= 1000:
        return f"{(grams / 1000).normalize():f} кг".replace(".", ",")
    return f"{grams.normalize():f} г"


def _kilo(product: Product, context: DialogContext) -> Reply:
    grams = pack_grams(product)
    if grams == 1000:
        return list_reply("Фасовка 1 кг:", [product], context=_same(context))
    siblings = pack_siblings(product) if grams is not None else []
    kilos = sorted((s for s in siblings if pack_grams(s) == 1000), key=lambda s: not s.in_stock)[:1]
    if kilos:
        return list_reply("Фасовка 1 кг:", kilos, context=dialog.shown(kilos, query=_query_of(context, product)))
    if grams is None or product.price is None:
        return list_reply("Цена:", [product], context=_same(context))
    per_kilo = (product.price * 1000 / grams).quantize(Decimal(1))
    text = (
        f"Фасовки 1 кг нет; в пересчёте на килограмм — {money(per_kilo, product.currency)} "
        f"(по цене фасовки {_size_words(grams)}):\n{product_block([product])}"
    )
    packs = _one_per_size(sorted([*siblings, product], key=pack_grams))
    if len(packs) > 1:
        text += "\nЕсть фасовки: " + ", ".join(_size_words(pack_grams(p)) for p in packs) + "."
    return Reply(text, Kind.CATALOG, products=[product], suggestions=["Доставка", "Позвать оператора"])


def _pack_of_size(size: str, product: Product, context: DialogContext) -> Reply | None:
    if has_size(product, size):
        return list_reply(f"Фасовка {size}:", [product], context=_same(context))
    same = [s for s in pack_siblings(product) if has_size(s, size)]
    if same:
        same = sorted(same, key=lambda s: not s.in_stock)[:1]
        if not same[0].in_stock:
            return out_of_stock_reply(same[0], _query_of(context, product))
        return list_reply(f"Фасовка {size}:", same, context=dialog.shown(same, query=_query_of(context, product)))
    query = _query_of(context, product)
    result = find_products(f"{query} {_limits_text(context.price, size)}")
    sized = [p for p in result.products if p.in_stock and has_size(p, size)][:MAX_PRODUCTS]
    if sized:
        return list_reply(
            f"Фасовка {size}:", sized, context=dialog.shown(sized, query=query, price=context.price, size=size)
        )
    packs = _one_per_size(sorted([*pack_siblings(product), product], key=lambda p: pack_grams(p) or 0))
    have = ", ".join(_size_words(pack_grams(p)) for p in packs if pack_grams(p) is not None)
    text = f"Фасовки {size} у «{product.title}» нет." + (f" Есть: {have}." if have else "")
    return Reply(f"{text} {OPERATOR_HINT}", Kind.CATALOG, suggestions=["Позвать оператора"])


# --- the same product words with an attribute -------------------------------------------------


def _with_attributes(attributes: list[str], follow: intents.FollowUp, context: DialogContext) -> Reply | None:
    """«а охлаждённый?»: the product words of the query with the attribute, instead of the query's own attributes.

    When no product has them all, what the words alone find, said as such;
    None when the store's FAQ answers them («а свежая?» is a question about
    the store) or nothing was found at all.
    """
    nouns = [w for w in words(context.query) if not intents.is_attribute(w) and w not in NOISE_WORDS]
    if not nouns:
        return None
    price = follow.price or context.price
    size = follow.size or context.size
    limits = _limits_text(price, size)
    for base in dict.fromkeys([" ".join(nouns), nouns[0]]):
        query = f"{base} {' '.join(attributes)}"
        result = find_products(f"{query} {limits}")
        matching = [p for p in result.products if matches_all(p, words(query))]
        if not matching:
            continue
        in_stock = [p for p in matching if p.in_stock][:MAX_PRODUCTS]
        if not in_stock:
            return out_of_stock_reply(matching[0], query, limits={"query": query, "price": price, "size": size})
        return list_reply(
            "Вот что есть в наличии:",
            in_stock,
            context=dialog.shown(in_stock, query=query, price=price, size=size),
        )
    said = " ".join(follow.words)
    if match_faq(said):
        return None
    # Not necessarily an attribute («минтая» reads like one): the words on their own.
    alone = found_reply(find_products(f"{said} {limits}"), note=f" по запросу «{said}»")
    if alone is not None:
        alone.text = f"«{query}» в каталоге не нашёл. {alone.text}"
    return alone
