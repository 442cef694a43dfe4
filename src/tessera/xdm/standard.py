"""Tessera's own definitions of the standard XDM classes and field groups a CDP needs.

Written by us from the documented field names and types (``spec/external-data.md`` §1.2); the
names are the AEP ("XED") spelling: ``person.name.firstName``, ``_id``, ``_repo.createDate``.
Only the commonly used part of each Adobe definition is modelled; records may carry more
fields (unknown fields are allowed unless a validator is compiled strict).
"""

from __future__ import annotations

from typing import Any

from tessera.xdm.fields import (
    Node,
    array,
    boolean,
    date,
    date_time,
    email,
    integer,
    map_of,
    number,
    obj,
    string,
)

PROFILE = "https://ns.adobe.com/xdm/context/profile"
"""``$id`` of the XDM Individual Profile class (``_xdm.context.profile``)."""
EXPERIENCE_EVENT = "https://ns.adobe.com/xdm/context/experienceevent"
"""``$id`` of the XDM ExperienceEvent class (``_xdm.context.experienceevent``)."""
RECORD_BEHAVIOR = "https://ns.adobe.com/xdm/data/record"
TIME_SERIES_BEHAVIOR = "https://ns.adobe.com/xdm/data/time-series"

IDENTITY_MAP = "https://ns.adobe.com/xdm/context/identitymap"
PERSON_DETAILS = "https://ns.adobe.com/xdm/context/profile-person-details"
PERSONAL_DETAILS = "https://ns.adobe.com/xdm/context/profile-personal-details"
WORK_DETAILS = "https://ns.adobe.com/xdm/context/profile-work-details"
SEGMENTATION = "https://ns.adobe.com/xdm/context/profile-segmentation"
LOYALTY = "https://ns.adobe.com/xdm/mixins/profile/profile-loyalty-details"
CONSENTS = "https://ns.adobe.com/xdm/mixins/profile-consents"
SOURCE_AUDIT = "https://ns.adobe.com/xdm/common/external-source-system-audit-details"
COMMERCE = "https://ns.adobe.com/xdm/context/experienceevent-commerce"
WEB = "https://ns.adobe.com/xdm/context/experienceevent-web"
ENVIRONMENT = "https://ns.adobe.com/xdm/context/experienceevent-environment-details"


def alt_id(id_: str) -> str:
    """The AEP ``meta:altId`` of a built-in ``$id``.

    >>> alt_id("https://ns.adobe.com/xdm/context/profile")
    '_xdm.context.profile'
    """
    return "_" + id_.removeprefix("https://ns.adobe.com/").replace("/", ".")


def _audit_fields() -> dict[str, Node]:
    return {
        "_repo": obj(
            {"createDate": date_time("Create date"), "modifyDate": date_time("Modify date")},
            "Repository audit",
        )
    }


def _identity_item() -> Node:
    return obj(
        {
            "id": string("Identifier"),
            "authenticatedState": string(
                "Authenticated state", enum=["ambiguous", "authenticated", "loggedOut"]
            ),
            "primary": boolean("Primary"),
        },
        "Identity",
    )


def _address(title: str) -> Node:
    return obj(
        {
            "street1": string("Street 1"),
            "street2": string("Street 2"),
            "street3": string("Street 3"),
            "street4": string("Street 4"),
            "city": string("City"),
            "stateProvince": string("State or province"),
            "postalCode": string("Postal code"),
            "country": string("Country"),
            "countryCode": string("Country code", description="ISO 3166-1 alpha-2 code"),
            "region": string("Region"),
            "postOfficeBox": string("Post office box"),
            "primary": boolean("Primary"),
            "label": string("Label"),
            "status": string("Status"),
            "lastVerifiedDate": date("Last verified date"),
            "_schema": obj({"latitude": number("Latitude"), "longitude": number("Longitude")}, "Geo"),
        },
        title,
    )


def _email(title: str) -> Node:
    return obj(
        {
            "address": email("Address"),
            "primary": boolean("Primary"),
            "label": string("Label"),
            "type": string("Type"),
            "status": string("Status"),
        },
        title,
    )


def _phone(title: str) -> Node:
    return obj(
        {
            "number": string("Number"),
            "countryCode": string("Country code"),
            "extension": string("Extension"),
            "primary": boolean("Primary"),
            "status": string("Status"),
            "validity": string("Validity"),
        },
        title,
    )


def _measure(title: str) -> Node:
    return obj({"id": string("Identifier"), "value": number("Value")}, title)


def _consent(title: str) -> Node:
    return obj({"val": string("Value"), "reason": string("Reason"), "time": date_time("Time")}, title)


def _classes() -> list[dict[str, Any]]:
    return [
        {
            "$id": PROFILE,
            "title": "XDM Individual Profile",
            "description": "A singular representation of the attributes and interests of an individual.",
            "behavior": "record",
            "properties": {
                "_id": string("Identifier", format="uri-reference"),
                "personID": string("Person ID"),
                **_audit_fields(),
            },
            "required": [],
        },
        {
            "$id": EXPERIENCE_EVENT,
            "title": "XDM ExperienceEvent",
            "description": "A time-series record of something that happened: a page view, a purchase, ...",
            "behavior": "time-series",
            "properties": {
                "_id": string("Identifier", format="uri-reference"),
                "timestamp": date_time("Timestamp"),
                "eventType": string(
                    "Event type", description="e.g. commerce.purchases, web.webpagedetails.pageViews"
                ),
                "eventMergeId": string("Event merge ID"),
                "producedBy": string("Produced by"),
                "identityMap": map_of(array(_identity_item()), "Identity map"),
                **_audit_fields(),
            },
            "required": ["_id", "timestamp"],
        },
    ]


def _field_groups() -> list[dict[str, Any]]:
    both = [PROFILE, EXPERIENCE_EVENT]
    return [
        {
            "$id": IDENTITY_MAP,
            "title": "IdentityMap",
            "description": "Identities of the individual keyed by namespace code.",
            "classes": both,
            "properties": {"identityMap": map_of(array(_identity_item()), "Identity map")},
        },
        {
            "$id": PERSON_DETAILS,
            "title": "Demographic Details",
            "description": "Name, birth date and gender of the individual.",
            "classes": [PROFILE],
            "properties": {
                "person": obj(
                    {
                        "name": obj(
                            {
                                "firstName": string("First name"),
                                "middleName": string("Middle name"),
                                "lastName": string("Last name"),
                                "fullName": string("Full name"),
                                "courtesyTitle": string("Courtesy title"),
                                "suffix": string("Suffix"),
                            },
                            "Full name",
                        ),
                        "birthDate": date("Birth date"),
                        "birthDayAndMonth": string("Birth day and month"),
                        "birthYear": integer("Birth year"),
                        "gender": string("Gender", enum=["male", "female", "not_specified", "non_specific"]),
                        "maritalStatus": string(
                            "Marital status",
                            enum=["married", "single", "divorced", "widowed", "not_specified"],
                        ),
                        "nationality": string("Nationality"),
                        "type": string("Type"),
                        "taxId": string("Tax ID"),
                    },
                    "Person",
                )
            },
        },
        {
            "$id": PERSONAL_DETAILS,
            "title": "Personal Contact Details",
            "description": "Home address, personal e-mail and phones.",
            "classes": [PROFILE],
            "properties": {
                "homeAddress": _address("Home address"),
                "mailingAddress": _address("Mailing address"),
                "shippingAddress": _address("Shipping address"),
                "billingAddress": _address("Billing address"),
                "personalEmail": _email("Personal e-mail"),
                "homePhone": _phone("Home phone"),
                "mobilePhone": _phone("Mobile phone"),
                "faxPhone": _phone("Fax phone"),
            },
        },
        {
            "$id": WORK_DETAILS,
            "title": "Work Contact Details",
            "description": "Work address, e-mail and phone.",
            "classes": [PROFILE],
            "properties": {
                "workAddress": _address("Work address"),
                "workEmail": _email("Work e-mail"),
                "workPhone": _phone("Work phone"),
            },
        },
        {
            "$id": SEGMENTATION,
            "title": "Segment Membership Details",
            "description": "Segment memberships keyed by namespace (e.g. ups) then segment id.",
            "classes": [PROFILE],
            "properties": {
                "segmentMembership": map_of(
                    map_of(
                        obj(
                            {
                                "segmentID": obj(
                                    {"_id": string("Segment id"), "namespace": obj({"code": string("Code")})},
                                    "Segment",
                                ),
                                "version": string("Version"),
                                "status": string("Status", enum=["realized", "existing", "exited"]),
                                "lastQualificationTime": date_time("Last qualification time"),
                                "validUntil": date_time("Valid until"),
                                "payload": obj(
                                    {
                                        "payloadType": string(
                                            "Payload type", enum=["boolean", "number", "propensity", "string"]
                                        ),
                                        "payloadBooleanValue": boolean(),
                                        "payloadNumberValue": number(),
                                        "payloadPropensityValue": number(),
                                        "payloadStringValue": string(),
                                    },
                                    "Payload",
                                ),
                            },
                            "Segment membership",
                        )
                    ),
                    "Segment membership",
                )
            },
        },
        {
            "$id": LOYALTY,
            "title": "Loyalty Details",
            "description": "Loyalty programme membership: tier, points, dates.",
            "classes": [PROFILE],
            "properties": {
                "loyalty": obj(
                    {
                        "loyaltyID": array(string(), "Loyalty IDs"),
                        "program": string("Program"),
                        "status": string("Status"),
                        "tier": string("Tier"),
                        "nextTier": string("Next tier"),
                        "points": number("Points"),
                        "pointsRedeemed": number("Points redeemed"),
                        "pointsToNextTier": number("Points to next tier"),
                        "lifetimePoints": number("Lifetime points"),
                        "lifetimePurchases": number("Lifetime purchases"),
                        "joinDate": date_time("Join date"),
                        "tierUpgradeDate": date_time("Tier upgrade date"),
                        "tierExpiryDate": date_time("Tier expiry date"),
                    },
                    "Loyalty",
                )
            },
        },
        {
            "$id": CONSENTS,
            "title": "Consents and Preferences",
            "description": "Collection, sharing, personalisation and marketing consents.",
            "classes": [PROFILE],
            "properties": {
                "consents": obj(
                    {
                        "collect": _consent("Collect"),
                        "share": _consent("Share"),
                        "personalize": obj({"content": _consent("Content")}, "Personalize"),
                        "marketing": obj(
                            {
                                "preferred": string("Preferred channel"),
                                "any": _consent("Any"),
                                "email": _consent("E-mail"),
                                "push": _consent("Push"),
                                "sms": _consent("SMS"),
                                "call": _consent("Call"),
                                "postalMail": _consent("Postal mail"),
                            },
                            "Marketing",
                        ),
                        "metadata": obj({"time": date_time("Time")}, "Metadata"),
                    },
                    "Consents",
                )
            },
        },
        {
            "$id": SOURCE_AUDIT,
            "title": "External Source System Audit Details",
            "description": "Audit dates from the source system; lastUpdatedDate can order merges.",
            "classes": both,
            "properties": {
                "extSourceSystemAudit": obj(
                    {
                        "createdBy": string("Created by"),
                        "createdDate": date_time("Created date"),
                        "lastUpdatedBy": string("Last updated by"),
                        "lastUpdatedDate": date_time("Last updated date"),
                        "lastActivityDate": date_time("Last activity date"),
                        "lastReferencedDate": date_time("Last referenced date"),
                        "lastViewedDate": date_time("Last viewed date"),
                        "externalID": string("External ID"),
                    },
                    "External source system audit",
                )
            },
        },
        {
            "$id": COMMERCE,
            "title": "Commerce Details",
            "description": "Orders, purchases, cart actions and the product list of an event.",
            "classes": [EXPERIENCE_EVENT],
            "properties": {
                "commerce": obj(
                    {
                        "order": obj(
                            {
                                "purchaseID": string("Purchase ID"),
                                "purchaseOrderNumber": string("Purchase order number"),
                                "priceTotal": number("Price total"),
                                "currencyCode": string("Currency code"),
                                "taxAmount": number("Tax amount"),
                                "discountAmount": number("Discount amount"),
                                "orderType": string("Order type", enum=["checkout", "instant_purchase"]),
                                "payments": array(
                                    obj(
                                        {
                                            "transactionID": string("Transaction ID"),
                                            "paymentType": string("Payment type"),
                                            "paymentAmount": number("Payment amount"),
                                            "currencyCode": string("Currency code"),
                                        },
                                        "Payment",
                                    ),
                                    "Payments",
                                ),
                            },
                            "Order",
                        ),
                        "purchases": _measure("Purchases"),
                        "productViews": _measure("Product views"),
                        "productListAdds": _measure("Product list adds"),
                        "productListRemovals": _measure("Product list removals"),
                        "productListOpens": _measure("Product list opens"),
                        "productListViews": _measure("Product list views"),
                        "productListReopens": _measure("Product list reopens"),
                        "checkouts": _measure("Checkouts"),
                        "cartAbandons": _measure("Cart abandons"),
                        "saveForLaters": _measure("Save for laters"),
                    },
                    "Commerce",
                ),
                "productListItems": array(
                    obj(
                        {
                            "SKU": string("SKU"),
                            "name": string("Name"),
                            "product": string("Product", format="uri"),
                            "quantity": integer("Quantity"),
                            "priceTotal": number("Price total"),
                            "currencyCode": string("Currency code"),
                            "discountAmount": number("Discount amount"),
                            "productAddMethod": string("Product add method"),
                            "productCategories": array(
                                obj(
                                    {
                                        "categoryID": string("Category ID"),
                                        "categoryName": string("Category name"),
                                        "categoryPath": string("Category path"),
                                    },
                                    "Product category",
                                ),
                                "Product categories",
                            ),
                        },
                        "Product list item",
                    ),
                    "Product list items",
                ),
            },
        },
        {
            "$id": WEB,
            "title": "Web Details",
            "description": "Page, referrer and interaction of a web event.",
            "classes": [EXPERIENCE_EVENT],
            "properties": {
                "web": obj(
                    {
                        "webPageDetails": obj(
                            {
                                "name": string("Name"),
                                "URL": string("URL"),
                                "siteSection": string("Site section"),
                                "server": string("Server"),
                                "isHomePage": boolean("Is home page"),
                                "isErrorPage": boolean("Is error page"),
                                "pageViews": _measure("Page views"),
                            },
                            "Web page details",
                        ),
                        "webReferrer": obj(
                            {
                                "URL": string("URL"),
                                "type": string(
                                    "Type",
                                    enum=[
                                        "internal",
                                        "external",
                                        "search_engine",
                                        "typed_bookmarked",
                                        "email",
                                        "social",
                                        "usenet",
                                        "hard_drive",
                                        "nojs",
                                        "conversational_ai",
                                        "unknown",
                                    ],
                                ),
                            },
                            "Web referrer",
                        ),
                        "webInteraction": obj(
                            {
                                "type": string("Type", enum=["download", "exit", "other"]),
                                "URL": string("URL"),
                                "name": string("Name"),
                                "region": string("Region"),
                                "linkClicks": _measure("Link clicks"),
                            },
                            "Web interaction",
                        ),
                    },
                    "Web",
                )
            },
        },
        {
            "$id": ENVIRONMENT,
            "title": "Environment Details",
            "description": "Browser, operating system, device and network of an event.",
            "classes": [EXPERIENCE_EVENT],
            "properties": {
                "environment": obj(
                    {
                        "type": string("Type", enum=["browser", "application", "iot", "external", "widget"]),
                        "browserDetails": obj(
                            {
                                "name": string("Name"),
                                "vendor": string("Vendor"),
                                "version": string("Version"),
                                "acceptLanguage": string("Accept language"),
                                "userAgent": string("User agent"),
                                "cookiesEnabled": boolean("Cookies enabled"),
                                "viewportHeight": integer("Viewport height"),
                                "viewportWidth": integer("Viewport width"),
                            },
                            "Browser details",
                        ),
                        "operatingSystem": string("Operating system"),
                        "operatingSystemVersion": string("Operating system version"),
                        "operatingSystemVendor": string("Operating system vendor"),
                        "carrier": string("Carrier"),
                        "ISP": string("ISP"),
                        "ipV4": string("IPv4 address", format="ipv4"),
                        "ipV6": string("IPv6 address", format="ipv6"),
                    },
                    "Environment",
                ),
                "device": obj(
                    {
                        "type": string("Type"),
                        "manufacturer": string("Manufacturer"),
                        "model": string("Model"),
                        "screenHeight": integer("Screen height"),
                        "screenWidth": integer("Screen width"),
                    },
                    "Device",
                ),
                "placeContext": obj(
                    {
                        "localTime": date_time("Local time"),
                        "localTimezoneOffset": integer("Local time zone offset"),
                        "geo": obj(
                            {
                                "city": string("City"),
                                "countryCode": string("Country code"),
                                "stateProvince": string("State or province"),
                                "postalCode": string("Postal code"),
                                "_schema": obj(
                                    {"latitude": number("Latitude"), "longitude": number("Longitude")}
                                ),
                            },
                            "Geo",
                        ),
                    },
                    "Place context",
                ),
            },
        },
    ]


def standard_classes() -> list[dict[str, Any]]:
    """The built-in class definitions (fresh copies; safe to modify)."""
    return _classes()


def standard_field_groups() -> list[dict[str, Any]]:
    """The built-in field group definitions (fresh copies; safe to modify)."""
    return _field_groups()
