import type { AlertEvent } from '../../core/alert.js';

/** Placeholders the alert topic template accepts. */
export const ALERT_TOPIC_FIELDS = ['gateway', 'model', 'kind', 'severity', 'asset'] as const;
/** Placeholders the status topic template accepts. */
export const STATUS_TOPIC_FIELDS = ['gateway'] as const;

/** Placeholder names used in a template, in order. */
export function templateFields(template: string): string[] {
  return [...template.matchAll(/\{([^{}]*)\}/g)].map((m) => m[1]!);
}

/**
 * One topic level made of a value: `/` would split it into levels and `+`/`#` are wildcards a publish must not
 * contain, so they become `_`; an empty value becomes `_` too (an empty level is legal but easy to miss).
 */
export function topicLevel(value: string | undefined): string {
  if (!value) return '_';
  return value.replace(/[/+#]/g, '_').split(String.fromCharCode(0)).join('_');
}

function render(template: string, values: Record<string, string | undefined>): string {
  return template.replace(/\{([^{}]*)\}/g, (whole, field: string) => (field in values ? topicLevel(values[field]) : whole));
}

/** The topic an alert is published to. */
export function alertTopic(template: string, alert: AlertEvent, gatewayId: string): string {
  return render(template, {
    gateway: gatewayId,
    model: alert.model?.name,
    kind: alert.kind,
    severity: alert.severity,
    asset: alert.asset,
  });
}

/** The retained status topic of a gateway. */
export function statusTopic(template: string, gatewayId: string): string {
  return render(template, { gateway: gatewayId });
}
