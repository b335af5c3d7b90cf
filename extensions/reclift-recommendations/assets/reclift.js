/*
 * reclift's storefront widget (theme app extension asset; plain JavaScript, no build step, no dependencies).
 *
 * For every reclift block on the page it fetches recommendations through Shopify's app proxy, renders them, and
 * reports back what the shopper saw and did, in the event shapes of the app proxy's events route:
 *   - impression: once per card, when at least half of it has been in the viewport, with its position;
 *   - click: a click on a card's link;
 *   - add_to_cart: the card's button, which adds the product with the `_rec_id` line-item property;
 *   - view: the product of the current product page.
 * Events are batched and sent with navigator.sendBeacon when the page is hidden (and whenever a batch is full).
 * The anonymous visitor id lives in localStorage (a first-party cookie when storage is unavailable) and is written
 * to the cart attribute `_reclift_vid`, so an order can be matched to what its buyer was shown.
 *
 * A recommended product is added to the cart by its first available variant, read from Shopify's
 * `/products/<handle>.js` when the button is pressed (the handle is the last segment of the product's `url`), so the
 * recommendation response needs no variant data; a product without a `url` gets no button.
 *
 * Whatever fails (the proxy, the cart, storage) the widget shows nothing more and throws nothing.
 */
(function () {
  "use strict";

  // The app proxy declared in shopify.app.toml ([app_proxy] prefix "apps", subpath "reclift").
  var PROXY_PATH = "/apps/reclift";
  var VISITOR_KEY = "_reclift_vid";
  var VISITOR_COOKIE_DAYS = 365;
  var BATCH_SIZE = 20; // sent at once when this many events are waiting
  var MAX_EVENTS_PER_REQUEST = 50; // the events route's limit
  var VISIBLE_SHARE = 0.5;

  if (window.__reclift) {
    return; // loaded twice (two blocks, or a theme that also includes it): one instance serves every block
  }

  var queue = [];
  var viewedProducts = {};
  var cartVisitorWritten = null;
  var started = new WeakSet();

  function root() {
    var shopifyRoot = window.Shopify && window.Shopify.routes && window.Shopify.routes.root;
    return typeof shopifyRoot === "string" ? shopifyRoot : "/";
  }

  // --- the anonymous visitor id --------------------------------------------------------------------------------

  function newVisitorId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    var hex = "";
    for (var i = 0; i < bytes.length; i++) {
      hex += (bytes[i] + 256).toString(16).slice(1);
    }
    return "v-" + hex;
  }

  function validVisitorId(value) {
    return typeof value === "string" && /^[A-Za-z0-9_.:-]{1,128}$/.test(value) ? value : null;
  }

  function readCookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) {
        return decodeURIComponent(parts[i].slice(eq + 1));
      }
    }
    return null;
  }

  function writeCookie(name, value) {
    var expires = new Date(Date.now() + VISITOR_COOKIE_DAYS * 864e5).toUTCString();
    document.cookie = name + "=" + encodeURIComponent(value) + "; expires=" + expires + "; path=/; SameSite=Lax";
  }

  function visitorId() {
    var id = null;
    try {
      id = validVisitorId(window.localStorage.getItem(VISITOR_KEY));
      if (!id) {
        id = validVisitorId(readCookie(VISITOR_KEY)) || newVisitorId();
        window.localStorage.setItem(VISITOR_KEY, id);
      }
      return id;
    } catch (storageUnavailable) {
      id = validVisitorId(readCookie(VISITOR_KEY));
      if (!id) {
        id = newVisitorId();
        writeCookie(VISITOR_KEY, id);
      }
      return id;
    }
  }

  // --- events ----------------------------------------------------------------------------------------------------

  function post(events) {
    var url = PROXY_PATH + "/events";
    var body = JSON.stringify({ events: events });
    // A string body goes as text/plain, which a beacon may send to any origin without a preflight.
    var sent = false;
    try {
      sent = typeof navigator.sendBeacon === "function" && navigator.sendBeacon(url, body);
    } catch (beaconRefused) {
      sent = false;
    }
    if (!sent && typeof window.fetch === "function") {
      window
        .fetch(url, { method: "POST", body: body, keepalive: true, headers: { "Content-Type": "application/json" } })
        .catch(function () {});
    }
  }

  function flush() {
    while (queue.length) {
      post(queue.splice(0, MAX_EVENTS_PER_REQUEST));
    }
  }

  function track(event) {
    queue.push(event);
    if (queue.length >= BATCH_SIZE) {
      flush();
    }
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") {
      flush();
    }
  });
  window.addEventListener("pagehide", flush);

  // --- the cart ----------------------------------------------------------------------------------------------------

  function cartRequest(path, payload) {
    return window
      .fetch(root() + path, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(payload),
      })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("cart " + path + " answered " + response.status);
        }
        return response.json();
      });
  }

  // The cart attribute that carries the visitor id onto the order (its note_attributes); written once per page.
  function writeCartVisitor(visitor) {
    if (!cartVisitorWritten) {
      var attributes = {};
      attributes[VISITOR_KEY] = visitor;
      cartVisitorWritten = cartRequest("cart/update.js", { attributes: attributes }).catch(function () {
        cartVisitorWritten = null; // try again on the next impression or add
      });
    }
    return cartVisitorWritten || Promise.resolve();
  }

  function firstAvailableVariant(handle) {
    return window
      .fetch(root() + "products/" + encodeURIComponent(handle) + ".js", {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("product " + handle + " answered " + response.status);
        }
        return response.json();
      })
      .then(function (product) {
        var variants = (product && product.variants) || [];
        for (var i = 0; i < variants.length; i++) {
          if (variants[i] && variants[i].available) {
            return variants[i].id;
          }
        }
        return null;
      });
  }

  // --- rendering ---------------------------------------------------------------------------------------------------

  function handleOf(url) {
    var match = /\/products\/([^/?#]+)/.exec(url || "");
    return match ? decodeURIComponent(match[1]) : null;
  }

  function safeUrl(url) {
    if (typeof url !== "string" || !url) {
      return null;
    }
    try {
      var resolved = new URL(url, window.location.href);
      return resolved.protocol === "https:" || resolved.protocol === "http:" ? resolved.href : null;
    } catch (notAUrl) {
      return null;
    }
  }

  function formatPrice(price, currency, locale) {
    var amount = Number(price);
    if (typeof price !== "string" || !isFinite(amount)) {
      return null;
    }
    try {
      if (currency) {
        return new Intl.NumberFormat(locale || undefined, { style: "currency", currency: currency }).format(amount);
      }
    } catch (unknownCurrency) {
      // falls through to the plain amount
    }
    return price;
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    node.className = className;
    if (text) {
      node.textContent = text;
    }
    return node;
  }

  function card(product, settings) {
    var item = element("li", "reclift__item");
    item.setAttribute("data-product-id", product.product_id);
    item.setAttribute("data-position", String(product.position));

    var href = safeUrl(product.url);
    var body = element(href ? "a" : "div", "reclift__link");
    if (href) {
      body.href = href;
    }
    var image = safeUrl(product.image);
    if (image) {
      var img = element("img", "reclift__image");
      img.src = image;
      img.alt = typeof product.title === "string" ? product.title : "";
      img.loading = "lazy";
      body.appendChild(img);
    }
    if (typeof product.title === "string" && product.title) {
      body.appendChild(element("span", "reclift__name", product.title));
    }
    var price = formatPrice(product.price, settings.currency, settings.locale);
    if (price) {
      body.appendChild(element("span", "reclift__price", price));
    }
    item.appendChild(body);

    var handle = href && handleOf(product.url);
    if (handle) {
      var button = element("button", "reclift__add", settings.addLabel || "Add to cart");
      button.type = "button";
      button.setAttribute("data-handle", handle);
      item.appendChild(button);
    }
    return item;
  }

  function renderable(product) {
    return (
      product &&
      (typeof product.product_id === "string" || typeof product.product_id === "number") &&
      typeof product.position === "number"
    );
  }

  function settingsOf(container) {
    var data = container.dataset;
    var placement = data.placement === "cart" || data.placement === "home" ? data.placement : "product";
    var productId = /^[0-9]+$/.test(data.productId || "") ? data.productId : null;
    if (placement === "product" && !productId) {
      placement = "home"; // a product block placed on a page without a product
    }
    var limit = parseInt(data.limit, 10);
    return {
      placement: placement,
      productId: productId,
      limit: limit >= 1 && limit <= 20 ? limit : 4,
      cartProductIds: (data.cartProductIds || "").split(",").filter(function (id) {
        return /^[0-9]+$/.test(id);
      }),
      currency: data.currency || "",
      locale: data.locale || "",
      addLabel: data.addLabel,
      addedLabel: data.addedLabel,
      unavailableLabel: data.unavailableLabel,
    };
  }

  function recommendationsUrl(settings, visitor) {
    var params = ["placement=" + settings.placement, "limit=" + settings.limit, "visitor_id=" + visitor];
    if (settings.productId) {
      params.push("product_id=" + settings.productId);
    }
    if (settings.placement === "cart" && settings.cartProductIds.length) {
      params.push("cart_product_ids=" + settings.cartProductIds.slice(0, 50).join(","));
    }
    return PROXY_PATH + "/recommendations?" + params.join("&");
  }

  function fetchRecommendations(url) {
    return window
      .fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (data) {
        if (!data || typeof data.rec_id !== "string" || !Array.isArray(data.products)) {
          return null;
        }
        return data;
      });
  }

  // --- one block ---------------------------------------------------------------------------------------------------

  function observeImpressions(list, recommendation, settings, visitor) {
    if (typeof window.IntersectionObserver !== "function") {
      return; // nothing can tell what was seen: report nothing rather than guess
    }
    var observer = new window.IntersectionObserver(
      function (entries) {
        var shown = [];
        entries.forEach(function (entry) {
          if (entry.isIntersecting && entry.intersectionRatio >= VISIBLE_SHARE) {
            observer.unobserve(entry.target);
            shown.push({
              product_id: entry.target.getAttribute("data-product-id"),
              position: Number(entry.target.getAttribute("data-position")),
            });
          }
        });
        if (!shown.length) {
          return;
        }
        var impression = {
          type: "impression",
          rec_id: recommendation.rec_id,
          visitor_id: visitor,
          placement: settings.placement,
          products: shown,
        };
        if (settings.productId) {
          impression.source_product_id = settings.productId;
        }
        track(impression);
        writeCartVisitor(visitor);
      },
      { threshold: VISIBLE_SHARE }
    );
    Array.prototype.forEach.call(list.children, function (item) {
      observer.observe(item);
    });
  }

  function listenToCards(list, recommendation, settings, visitor) {
    function interaction(type, item) {
      return {
        type: type,
        rec_id: recommendation.rec_id,
        visitor_id: visitor,
        product_id: item.getAttribute("data-product-id"),
        position: Number(item.getAttribute("data-position")),
      };
    }

    list.addEventListener("click", function (domEvent) {
      var target = domEvent.target instanceof Element ? domEvent.target : null;
      var item = target && target.closest(".reclift__item");
      if (!item) {
        return;
      }
      var button = target.closest(".reclift__add");
      if (!button) {
        if (target.closest("a.reclift__link")) {
          track(interaction("click", item)); // sent on the pagehide that the link's navigation brings
        }
        return;
      }
      if (button.disabled) {
        return;
      }
      button.disabled = true;
      firstAvailableVariant(button.getAttribute("data-handle"))
        .then(function (variantId) {
          if (!variantId) {
            button.textContent = settings.unavailableLabel || "Sold out";
            return null;
          }
          return writeCartVisitor(visitor)
            .then(function () {
              return cartRequest("cart/add.js", {
                items: [{ id: variantId, quantity: 1, properties: { _rec_id: recommendation.rec_id } }],
              });
            })
            .then(function () {
              track(interaction("add_to_cart", item));
              flush(); // the shopper may head to checkout next
              button.textContent = settings.addedLabel || "Added";
              document.dispatchEvent(
                new CustomEvent("reclift:added-to-cart", {
                  detail: { productId: item.getAttribute("data-product-id"), variantId: variantId },
                })
              );
            });
        })
        .catch(function () {
          button.disabled = false;
        });
    });
  }

  function start(container) {
    if (started.has(container)) {
      return;
    }
    started.add(container);
    var settings = settingsOf(container);
    var visitor = visitorId();
    if (settings.productId && !viewedProducts[settings.productId]) {
      viewedProducts[settings.productId] = true;
      track({ type: "view", visitor_id: visitor, product_id: settings.productId });
    }
    var list = container.querySelector(".reclift__list");
    if (!list || typeof window.fetch !== "function") {
      return;
    }
    fetchRecommendations(recommendationsUrl(settings, visitor))
      .then(function (recommendation) {
        var products = recommendation ? recommendation.products.filter(renderable) : [];
        if (!products.length) {
          return;
        }
        var cards = document.createDocumentFragment();
        products.forEach(function (product) {
          cards.appendChild(card(product, settings));
        });
        list.appendChild(cards);
        container.hidden = false;
        observeImpressions(list, recommendation, settings, visitor);
        listenToCards(list, recommendation, settings, visitor);
      })
      .catch(function () {
        // the proxy failed or answered something else than recommendations: the block stays hidden and empty
      });
  }

  function startAll(scope) {
    try {
      Array.prototype.forEach.call(scope.querySelectorAll("[data-reclift-recommendations]"), function (container) {
        try {
          start(container);
        } catch (blockFailed) {
          // one broken block leaves the others working
        }
      });
    } catch (unavailable) {
      // nothing to start
    }
  }

  window.__reclift = { flush: flush };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      startAll(document);
    });
  } else {
    startAll(document);
  }
  // The theme editor re-renders a section when its settings change.
  document.addEventListener("shopify:section:load", function (event) {
    startAll(event.target instanceof Element ? event.target : document);
  });
})();
