/*
 * reclift's storefront widget (plain JavaScript, no dependencies). `make widget` minifies it into the theme app
 * extension's assets/reclift.js, the file Shopify serves: edit this one.
 *
 * For every reclift block on the page it fetches recommendations through Shopify's app proxy, renders them, and
 * reports back what the shopper saw and did, in the event shapes of the app proxy's events route:
 *   - impression: once per card, when at least half of it has been in the viewport, with its position;
 *   - click: a click on a card's link;
 *   - add_to_cart: the card's button, which adds the product with the `_rec_id` line-item property;
 *   - view: the product of the current product page.
 * Events are batched and sent with navigator.sendBeacon when the page is hidden (and whenever a batch is full).
 * The anonymous visitor id lives in localStorage (a first-party cookie when storage is unavailable) and is written
 * to the cart attribute `_reclift_vid`, so an order can be matched to what its buyer was shown: on an impression
 * only when the visitor already has a cart with items (writing an attribute creates a cart, and a cart for every
 * visitor who scrolls past the block would be one for nearly every visitor), or once the theme adds to the cart after
 * an impression, and whenever the visitor adds a product from the widget.
 *
 * The block is served with placeholder cards that hold the row's place (no layout shift when the cards arrive); they
 * are replaced by the cards, or the block is hidden when there is nothing to show.
 *
 * All of that only with the visitor's consent to analytics where it is required (see "consent" below).
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
  var cartHasVisitor = false; // the cart carries this visitor's id (written or found by this page)
  var cartWrite = null; // the pending check or write of the cart attribute: one at a time
  var cardsSeen = false; // an impression on this page
  var started = new WeakSet();
  var tracking = false; // the visitor's consent to analytics: see "consent"

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

  function writeCookie(name, value, days) {
    var expires = new Date(Date.now() + days * 864e5).toUTCString();
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
        writeCookie(VISITOR_KEY, id, VISITOR_COOKIE_DAYS);
      }
      return id;
    }
  }

  function forgetVisitor() {
    try {
      window.localStorage.removeItem(VISITOR_KEY);
    } catch (storageUnavailable) {
      // nothing stored there
    }
    if (readCookie(VISITOR_KEY) !== null) {
      writeCookie(VISITOR_KEY, "", -1);
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

  // With consent only: an event without it is dropped, never sent later.
  function track(event) {
    if (!tracking) {
      return;
    }
    event.visitor_id = visitorId();
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

  function cartVisitor(value) {
    var attributes = {};
    attributes[VISITOR_KEY] = value;
    return cartRequest("cart/update.js", { attributes: attributes });
  }

  // The visitor's cart, if they have one: Shopify's `cart` cookie (or a page rendered with items in the cart) says so
  // without a request, /cart.js (which creates nothing) gives its token, items and attributes. Null without a cart.
  function existingCart() {
    var rendered = Array.prototype.some.call(document.querySelectorAll("[data-reclift-recommendations]"), function (c) {
      return Number(c.getAttribute("data-cart-count")) > 0;
    });
    if (readCookie("cart") === null && !rendered) {
      return Promise.resolve(null);
    }
    return window
      .fetch(root() + "cart.js", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (cart) {
        return cart && cart.token ? cart : null;
      });
  }

  function visitorOnCart(cart) {
    return (cart && cart.attributes && cart.attributes[VISITOR_KEY]) || null;
  }

  // The cart attribute that carries the visitor id onto the order (its note_attributes), only with consent: after an
  // impression only onto a cart that exists and holds items (else asked again at the next impression); before an add
  // from the widget (`adding`) in any case, since the add creates the cart anyway.
  function writeCartVisitor(adding) {
    if (!tracking || cartHasVisitor || (cartWrite && !adding)) {
      return cartWrite || Promise.resolve();
    }
    var write = (cartWrite || Promise.resolve())
      .then(function () {
        if (!tracking || cartHasVisitor) {
          return null;
        }
        return (adding ? Promise.resolve(null) : existingCart()).then(function (cart) {
          var id = visitorId();
          if (!adding && !(cart && cart.item_count > 0)) {
            return null;
          }
          if (visitorOnCart(cart) === id) {
            cartHasVisitor = true;
            return null;
          }
          return cartVisitor(id).then(function () {
            cartHasVisitor = true;
          });
        });
      })
      .catch(function () {
        // tried again on the next impression or add
      })
      .then(function () {
        if (cartWrite === write) {
          cartWrite = null;
        }
      });
    cartWrite = write;
    return write;
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

  // A cart the theme creates or fills after the cards were seen (its own add to cart, on this page) gets the visitor
  // id then: resource timing tells of the theme's cart requests, without wrapping its fetch.
  function watchThemeCart() {
    try {
      new window.PerformanceObserver(function (list) {
        var cartChanged = list.getEntries().some(function (entry) {
          return /\/cart\/(add|change)(\.js)?([?#]|$)/.test(entry.name);
        });
        if (cardsSeen && cartChanged) {
          writeCartVisitor(false);
        }
      }).observe({ type: "resource" });
    } catch (unsupported) {
      // no resource timing: the id goes onto that cart at the next impression
    }
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

  function recommendationsUrl(settings) {
    var params = ["placement=" + settings.placement, "limit=" + settings.limit];
    if (tracking) {
      params.push("visitor_id=" + visitorId()); // without it, served in the learning arm and not counted for lift
    }
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

  // An event about a response carries its rec_id, as the server issued it, and its event_fields (what the rec_id
  // needs to prove what was shown): events that do not are not counted.
  function aboutResponse(recommendation, event) {
    var fields = recommendation.event_fields;
    if (fields && typeof fields === "object") {
      Object.keys(fields).forEach(function (key) {
        if (!Object.prototype.hasOwnProperty.call(event, key)) {
          event[key] = fields[key];
        }
      });
    }
    event.rec_id = recommendation.rec_id;
    return event;
  }

  // --- one block ---------------------------------------------------------------------------------------------------

  function observeImpressions(list, recommendation, settings) {
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
        var impression = aboutResponse(recommendation, {
          type: "impression",
          placement: settings.placement,
          products: shown,
        });
        if (settings.productId) {
          impression.source_product_id = settings.productId;
        }
        track(impression);
        cardsSeen = true;
        writeCartVisitor(false);
      },
      { threshold: VISIBLE_SHARE }
    );
    Array.prototype.forEach.call(list.children, function (item) {
      observer.observe(item);
    });
  }

  function listenToCards(list, recommendation, settings) {
    function interaction(type, item) {
      return aboutResponse(recommendation, {
        type: type,
        product_id: item.getAttribute("data-product-id"),
        position: Number(item.getAttribute("data-position")),
      });
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
          return writeCartVisitor(true)
            .then(function () {
              // The `_rec_id` line property attributes the order to the recommendation: only with consent too.
              var properties = tracking ? { _rec_id: recommendation.rec_id } : {};
              return cartRequest("cart/add.js", { items: [{ id: variantId, quantity: 1, properties: properties }] });
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

  // The product of the page is viewed: once per page, and only with consent (or once it is given).
  function trackView(container) {
    var productId = settingsOf(container).productId;
    if (tracking && productId && !viewedProducts[productId]) {
      viewedProducts[productId] = true;
      track({ type: "view", product_id: productId });
    }
  }

  function start(container) {
    if (started.has(container)) {
      return;
    }
    started.add(container);
    var settings = settingsOf(container);
    trackView(container);
    var list = container.querySelector(".reclift__list");
    // Nothing to show (the proxy failed or answered something else than recommendations, or none): the block and its
    // placeholders leave the page.
    function hide() {
      container.hidden = true;
    }
    if (!list || typeof window.fetch !== "function") {
      hide();
      return;
    }
    fetchRecommendations(recommendationsUrl(settings))
      .then(function (recommendation) {
        var products = recommendation ? recommendation.products.filter(renderable) : [];
        if (!products.length) {
          hide();
          return;
        }
        var cards = document.createDocumentFragment();
        products.forEach(function (product) {
          cards.appendChild(card(product, settings));
        });
        while (list.firstChild) {
          list.removeChild(list.firstChild); // the placeholders, in one go with the cards: one layout
        }
        list.appendChild(cards);
        list.removeAttribute("aria-busy");
        container.hidden = false;
        observeImpressions(list, recommendation, settings);
        listenToCards(list, recommendation, settings);
      })
      .catch(hide);
  }

  function eachBlock(scope, action) {
    try {
      Array.prototype.forEach.call(scope.querySelectorAll("[data-reclift-recommendations]"), function (container) {
        try {
          action(container);
        } catch (blockFailed) {
          // one broken block leaves the others working
        }
      });
    } catch (unavailable) {
      // no block to act on
    }
  }

  function startAll(scope) {
    eachBlock(scope, start);
  }

  // --- consent -----------------------------------------------------------------------------------------------------
  // Shopify's Customer Privacy API says whether analytics may be processed: not where the merchant requires consent in
  // the visitor's region and none was given, yes elsewhere. Without it: no visitor id stored, no event, no `_rec_id`;
  // recommendations are still shown, asked for without a visitor id. A banner's `visitorConsentCollected` starts (or,
  // withdrawn, stops) tracking from then on. Without the API (no Shopify.loadFeatures, or it fails) the region is
  // unknown: the widget assumes consent is required and not given.

  function setTracking(allowed) {
    var withdrawn = tracking && !allowed;
    tracking = allowed;
    if (allowed) {
      eachBlock(document, trackView); // the product still on the page is viewed from now on
      return;
    }
    queue.length = 0;
    forgetVisitor();
    if (withdrawn) {
      cartHasVisitor = false;
      existingCart()
        .then(function (cart) {
          return visitorOnCart(cart) ? cartVisitor("") : null; // no cart, nothing to remove: none is created
        })
        .catch(function () {});
    }
  }

  document.addEventListener("visitorConsentCollected", function (event) {
    setTracking(!!(event.detail && event.detail.analyticsAllowed));
  });

  function startPage() {
    var shopify = window.Shopify;
    if (!shopify || typeof shopify.loadFeatures !== "function") {
      setTracking(false); // no Customer Privacy API on this page
      startAll(document);
      return;
    }
    shopify.loadFeatures([{ name: "consent-tracking-api", version: "0.1" }], function (error) {
      try {
        setTracking(!error && shopify.customerPrivacy.analyticsProcessingAllowed() === true);
      } catch (apiMissing) {
        setTracking(false);
      }
      startAll(document);
    });
  }

  window.__reclift = { flush: flush };
  watchThemeCart();
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", startPage);
  } else {
    startPage();
  }
  // The theme editor re-renders a section when its settings change.
  document.addEventListener("shopify:section:load", function (event) {
    startAll(event.target instanceof Element ? event.target : document);
  });
})();
