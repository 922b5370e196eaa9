// Plum vote page: keyboard shortcuts and ranking by click order. Plain browser JavaScript
// (no build step); every vote still goes through the ballot form that htmx posts.
(() => {
  'use strict';
  /** Candidate ids in the order the voter picked them while ranking; null when not ranking. */
  let order = null;

  const stage = () => document.getElementById('stage');
  const cards = () => Array.from(document.querySelectorAll('#stage .card'));
  /** True from a swap until htmx has settled the new stage (its buttons are not wired before). */
  let settling = false;
  const busy = () => settling || !!document.querySelector('#stage form.htmx-request');

  function press(key) {
    const el = document.querySelector(`#stage [data-key="${key}"], dialog [data-key="${key}"]`);
    if (el) el.click();
    return !!el;
  }

  function setRanking(on) {
    order = on ? [] : null;
    const s = stage();
    if (!s) return;
    s.classList.toggle('ranking', on);
    const t = s.querySelector('[data-rank-toggle]');
    if (t) t.setAttribute('aria-pressed', String(on));
    for (const c of cards()) {
      c.removeAttribute('data-rank');
      c.querySelector('.rank-badge')?.removeAttribute('data-rank-label');
    }
  }

  function pick(card) {
    if (!order || order.includes(card.dataset.id)) return;
    order.push(card.dataset.id);
    card.setAttribute('data-rank', String(order.length));
    card.querySelector('.rank-badge')?.setAttribute('data-rank-label', String(order.length));
    const all = cards();
    // The last candidate's place is implied: fill it in and send the ranking.
    if (order.length >= all.length - 1) {
      for (const c of all) if (!order.includes(c.dataset.id)) order.push(c.dataset.id);
      const form = stage().querySelector('form.ballot');
      form.querySelector('input[name="ranking"]').value = JSON.stringify(order);
      form.querySelector('[data-rank-submit]').click();
    }
  }

  document.addEventListener(
    'click',
    (e) => {
      if (e.target.closest('[data-help]')) {
        document.getElementById('help')?.showModal();
        return;
      }
      const toggle = e.target.closest('[data-rank-toggle]');
      if (toggle) {
        setRanking(order === null);
        return;
      }
      if (order === null) return;
      const card = e.target.closest('#stage .card');
      if (card) {
        // While ranking, a click anywhere on a card (its buttons included) picks it.
        e.preventDefault();
        e.stopPropagation();
        pick(card);
      }
    },
    true,
  );

  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target.closest('input, textarea, select')) return;
    const help = document.getElementById('help');
    if (help && help.open) {
      if (e.key === '?') (help.close(), e.preventDefault());
      return; // Esc closes the dialog natively
    }
    const digit = /^(?:Digit|Numpad)([1-9])$/.exec(e.code);
    if (e.key === '?') {
      help?.showModal();
    } else if (e.key === 'Escape') {
      if (order !== null) setRanking(false);
      return;
    } else if (busy()) {
      // One action at a time: a vote is in flight.
    } else if (digit && order !== null) {
      const card = cards()[Number(digit[1]) - 1];
      if (card) pick(card);
    } else if (digit) {
      press(e.shiftKey ? `shift-${digit[1]}` : digit[1]);
    } else if (['x', 'u', 's', 'r'].includes(e.key.toLowerCase()) && !e.shiftKey) {
      press(e.key.toLowerCase());
    } else {
      return;
    }
    e.preventDefault();
  });

  // A new stage (after a vote, skip or undo) starts outside ranking mode. A key pressed before
  // htmx has processed the new stage would click a button htmx does not handle yet (a native
  // form post and a full page load), so keys wait for the settle.
  document.addEventListener('htmx:afterSwap', () => {
    order = null;
    settling = true;
  });
  document.addEventListener('htmx:afterSettle', () => {
    settling = false;
  });
})();
