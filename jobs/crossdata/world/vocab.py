"""The words the sample world is written with: names, places, queries, user agents, bots.

Kept apart from the simulation so the lists can grow without touching the logic. Accents,
apostrophes, CJK and emoji are here on purpose: downstream code must carry them intact.
"""

from __future__ import annotations

import unicodedata

FIRST_NAMES: tuple[str, ...] = (
    "Anna", "Léa", "Chloé", "Zoé", "Hélène", "François", "Loïc", "Anaïs", "Jérôme", "Maël",
    "Noé", "Inès", "Éloïse", "Mathéo", "Camille", "Lucas", "Hugo", "Louise", "Jade", "Gabriel",
    "Raphaël", "Manon", "Thomas", "Nicolas", "Julie", "Sarah", "Mohamed", "Yasmine", "Karim",
    "Fatima", "Björn", "Søren", "José", "María", "Ángel", "Łukasz", "Agnieszka", "Ngọc", "Minh",
    "Émile", "Céline", "Benoît", "Gaëlle", "Joël", "Clémence", "Adèle", "Théo", "Lina", "Paul",
    "Alice", "Jules", "Emma", "Arthur", "Rose", "Léon", "Ambre", "Sacha", "Nathan", "Océane",
    "Marie-Thérèse", "Jean-Luc", "Ana", "Oscar", "Iris", "Victor", "Margaux", "Antoine",
)  # fmt: skip

LAST_NAMES: tuple[str, ...] = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
    "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux",
    "Vincent", "Fournier", "Morel", "Girard", "André", "Mercier", "Dupont", "Lambert", "Bonnet",
    "François", "Martinez", "Müller", "Nguyễn", "Østergaard", "O'Brien", "Le Gall", "Da Silva",
    "Fontaine", "Chevalier", "Rousseau", "Blanc", "Guérin", "Boyer", "Garnier", "Faure",
    "Clément", "Gauthier", "Perrin", "Robin", "Meyer", "Benoît", "Lemaître", "Schmitt",
    "Kowalski", "Haddad", "Benali", "Žukauskas", "Ferreira", "N'Diaye", "Besnard", "Collin",
)  # fmt: skip

# (first, last) written in their own script: downstream must keep them intact.
CJK_NAMES: tuple[tuple[str, str], ...] = (
    ("芳", "王"),
    ("太郎", "山田"),
    ("美咲", "佐藤"),
    ("민준", "김"),
    ("伟", "李"),
    ("さくら", "高橋"),
)

EMOJI_FIRST_NAMES: tuple[str, ...] = ("Léa 🌸", "Max ⚽", "Zoé ✨", "Tom 🚀")

CSV_INJECTION = '=HYPERLINK("http://x.example","click")'

EMAIL_DOMAINS: tuple[str, ...] = (
    "example.org",
    "example.com",
    "example.net",
    "mail.example",
    "courriel.example",
)
# What a hurried agent types instead; only the domain is mistyped so a typo can never land on
# another person's address.
EMAIL_DOMAIN_TYPOS: dict[str, tuple[str, ...]] = {
    "example.org": ("exmaple.org", "example.ogr", "examlpe.org"),
    "example.com": ("exmaple.com", "example.cmo", "exemple.com"),
    "example.net": ("exmaple.net", "example.nte"),
    "mail.example": ("mial.example", "mail.exmaple"),
    "courriel.example": ("couriel.example", "courriel.exmaple"),
}

CITIES: tuple[tuple[str, str], ...] = (
    ("75011", "Paris"),
    ("69003", "Lyon"),
    ("13008", "Marseille"),
    ("31000", "Toulouse"),
    ("06000", "Nice"),
    ("44000", "Nantes"),
    ("67000", "Strasbourg"),
    ("34000", "Montpellier"),
    ("33000", "Bordeaux"),
    ("59000", "Lille"),
    ("35000", "Rennes"),
    ("42000", "Saint-Étienne"),
    ("76600", "Le Havre"),
    ("38000", "Grenoble"),
    ("21000", "Dijon"),
    ("30000", "Nîmes"),
    ("13100", "Aix-en-Provence"),
    ("25000", "Besançon"),
)

# What a web form's second address line holds: a CRM export writes it on a line of its own
# inside the quoted address cell (RFC 4180), a till or a call centre after a comma.
ADDRESS_LINE2: tuple[str, ...] = (
    "Appartement 12",
    "Résidence Les Tilleuls",
    "Escalier B, 3e étage",
    "Porte 4",
    "Chez M. Durand",
)

STREETS: tuple[str, ...] = (
    "rue des Lilas",
    "avenue Jean Jaurès",
    "boulevard Voltaire",
    "rue de la République",
    "place du Marché",
    "chemin des Écoliers",
    "impasse des Roses",
    "allée Émile Zola",
    "rue Pasteur",
    "quai de la Loire",
    "rue du Faubourg Saint-Honoré",
)

LANGUAGES: tuple[str, ...] = ("fr", "fr", "fr", "fr", "en", "de", "es", "it", "")

SEARCH_QUERIES: tuple[str, ...] = (
    "chaussures de running",
    "robe d'été",
    "sac à dos",
    "café en grains",
    "cadeau fête des mères 🎁",
    "運動靴",
    "ランニングシューズ",
    "черная куртка",
    "jupe plissée",
    "crème hydratante",
    "lunettes de soleil 😎",
    "écouteurs sans fil",
    'taille "XL" homme',
    "pull en laine",
    "montre connectée",
    "bougie parfumée",
    "jean slim",
    "tapis de yoga",
    "bouilloire électrique",
    "parapluie",
    "pyjama enfant",
    "chaussettes",
    "veste imperméable",
    "baskets blanches",
    "儿童玩具",
    "coque iphone",
    "naïve tee-shirt",
    "cafetière à piston",
    "serviette de plage 🏖️",
    "c:\\chemin\\mal tapé",
)

STORE_CITIES = tuple(city for _, city in CITIES)

DESKTOP_UAS: tuple[str, ...] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/123.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
)
# Safari partitions and caps first-party cookies (ITP): they expire within days.
SAFARI_UAS: tuple[str, ...] = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
)
MOBILE_UAS: tuple[str, ...] = (
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/123.0.0.0 Mobile Safari/537.36",
)
APP_UAS: tuple[str, ...] = (
    "ShopExample/5.2.1 (iPhone; iOS 17.4; Scale/3.00)",
    "ShopExample/5.2.1 (Linux; Android 14; SM-S918B)",
    "ShopExample/5.1.0 (Linux; Android 13; Pixel 7)",
)
TABLET_APP_UA = "ShopExample/5.2.1 (iPad; iPadOS 17.4; Scale/2.00)"
KIOSK_UA = "ShopExampleKiosk/3.1.0 (Linux; Android 12; StoreKiosk)"
APP_VERSIONS: tuple[str, ...] = ("5.2.1", "5.2.1", "5.2.0", "5.1.0")
KIOSK_APP_VERSION = "kiosk-3.1.0"

# Declared bots: they say who they are in the user agent.
DECLARED_BOT_UAS: tuple[str, ...] = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
)

ORGANIC_REFERRERS: tuple[str, ...] = (
    "https://www.google.com/",
    "https://www.google.fr/",
    "https://www.bing.com/",
    "https://duckduckgo.com/",
    "https://www.qwant.com/",
)
REFERRAL_REFERRERS: tuple[str, ...] = (
    "https://www.blog-mode.example/article/tendances-printemps",
    "https://forum.example.net/t/avis-livraison/123",
    "https://www.comparateur.example/produits",
    "https://www.magazine.example/selection-cadeaux",
)
AD_REFERRERS: dict[str, str] = {
    "paid_search": "https://www.google.com/",
    "social": "https://www.instagram.com/",
    "display": "https://news-site.example/",
    "video": "https://www.youtube.com/",
    "affiliate": "https://www.cashback.example/",
}
PLACEMENTS: dict[str, tuple[str, ...]] = {
    "display": ("news-site-top", "meteo-sidebar", "sport-blog-mid", "recipes-footer"),
    "social": ("instagram-feed", "facebook-feed", "instagram-stories"),
    "video": ("youtube-preroll", "streaming-midroll"),
    "paid_search": ("google-search", "bing-search"),
    "affiliate": ("cashback-portal", "voucher-site"),
}

SHOP = "https://shop.example"


# Letters that Unicode does not decompose into a base letter and an accent.
_TRANSLIT = str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D",
                           "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ß": "ss"})  # fmt: skip


def ascii_slug(text: str) -> str:
    """Letters of ``text`` without accents, lower-cased (for email local parts)."""
    plain = unicodedata.normalize("NFKD", text.translate(_TRANSLIT))
    plain = plain.encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in plain.lower() if "a" <= ch <= "z")
